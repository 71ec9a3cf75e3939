"""The current group of pictures: the last IDR and every picture after it.

A new viewer is sent this first so it starts decoding at once instead of waiting for
the camera's next IDR (aiortc ignores PLI/FIR for pre-encoded packets).
"""

from __future__ import annotations

from gateway.media.accessunit import AccessUnit
from gateway.media.limits import StreamLimits


class GopCache:
    """Holds one GOP, bounded by frame count and bytes.

    Only a GOP that starts with its IDR is any use to a decoder, so when a cap is
    exceeded (a camera with a huge or endless GOP) the cache empties and stays empty
    until the next keyframe rather than keeping a headless tail.
    """

    def __init__(self, max_frames: int = 600, max_bytes: int = StreamLimits.gop_bytes) -> None:
        if max_frames < 1 or max_bytes < 1:
            raise ValueError("GOP cache caps must be positive")
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._frames: list[AccessUnit] = []
        self._bytes = 0
        self.overflows = 0  # GOPs discarded for exceeding a cap

    def add(self, au: AccessUnit) -> None:
        if au.keyframe:
            self._frames = [au]
            self._bytes = au.size
        elif self._frames:
            self._frames.append(au)
            self._bytes += au.size
        else:
            return  # no IDR yet: nothing to decode these against
        if len(self._frames) > self.max_frames or self._bytes > self.max_bytes:
            self.overflows += 1
            self.clear()

    def frames(self) -> list[AccessUnit]:
        """The cached pictures in decoding order, the IDR first (a copy)."""
        return list(self._frames)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        self._frames = []
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._frames)

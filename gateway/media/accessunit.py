"""The one unit of video that flows from a source to every viewer."""

from __future__ import annotations

from dataclasses import dataclass, field

START_CODE = b"\x00\x00\x00\x01"
VIDEO_CLOCK_RATE = 90_000


@dataclass(frozen=True, slots=True, eq=False)
class AccessUnit:
    """One whole H.264 picture.

    `nals` are the NAL units without start codes, in decoding order. `pts` is on the
    90 kHz clock, unwrapped (it never goes backwards by 2**32). `arrival` is
    `time.monotonic()` when the last byte of the picture arrived at the gateway.
    `capture` is when the camera captured it, on the camera's wall clock in Unix
    seconds, from its RTCP sender reports (None when the source has none yet): the
    clock audio shares (gateway.media.audio.AudioPacket.capture).
    """

    nals: tuple[bytes, ...]
    pts: int
    keyframe: bool
    arrival: float
    capture: float | None = None
    # Shared per-frame work (e.g. RTP payloads) cached by consumers, computed once
    # for every viewer. Keyed by the consumer's own name.
    cache: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    @property
    def size(self) -> int:
        return sum(len(n) for n in self.nals)

    def annexb(self) -> bytes:
        """The picture as an Annex-B byte stream (4-byte start codes)."""
        return b"".join(START_CODE + n for n in self.nals)

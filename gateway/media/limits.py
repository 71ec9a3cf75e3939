"""How much of one camera's video camgate will hold: caps against a broken or hostile
camera, which could otherwise grow the gateway's memory without end (one timestamp
and never a marker bit, an FU-A that never ends, a GOP that never closes).

The defaults carry a 4K camera at a high bitrate with room to spare: a 4K IDR at
30 Mbit/s is about 1-2 MB, a 2 s GOP about 8 MB. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024

# H.264 level 6.2 (Table A-1): at most 139264 macroblocks a frame. No camera sends
# pictures wider or taller than 8192 pixels.
MAX_MACROBLOCKS = 139_264
MAX_PICTURE_SIDE = 8192


@dataclass(frozen=True)
class StreamLimits:
    """Caps in bytes. `picture_bytes` bounds one picture being assembled (and so one
    NAL unit); `gop_bytes` the cached GOP new viewers start from; `viewer_queue_bytes`
    the live pictures queued for one viewer."""

    picture_bytes: int = 4 * MB
    gop_bytes: int = 64 * MB
    viewer_queue_bytes: int = 32 * MB

    def __post_init__(self) -> None:
        if min(self.picture_bytes, self.gop_bytes, self.viewer_queue_bytes) < 1:
            raise ValueError("stream limits must be positive")


class LimitExceeded(ValueError):
    """A camera sent more than a cap allows; the data was dropped. The message is safe to
    show: it says which cap, never what the data held."""


def describe_bytes(count: int) -> str:
    """4194304 -> '4 MB', 1536 -> '1.5 KB': caps as people write them."""
    for unit, size in (("MB", MB), ("KB", 1024)):
        if count >= size:
            return f"{count / size:g} {unit}"
    return f"{count} bytes"


def picture_size_problem(width: int, height: int) -> str | None:
    """Why a picture of `width` x `height` pixels is absurd, or None when it is plausible."""
    macroblocks = -(-width // 16) * -(-height // 16)
    if width > MAX_PICTURE_SIDE or height > MAX_PICTURE_SIDE or macroblocks > MAX_MACROBLOCKS:
        return (
            f"the camera announces {width}x{height} pictures, beyond H.264 level 6.2 "
            f"(at most {MAX_PICTURE_SIDE} pixels a side, {MAX_MACROBLOCKS} macroblocks)"
        )
    return None

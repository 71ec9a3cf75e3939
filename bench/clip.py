"""The camera's clip: 1080p30 H.264 High, ~4 Mbit/s, no B-frames, encoded once and cached.

Encoding live would cost most of this 2-core machine and disturb every measurement,
so ffmpeg encodes a short clip per GOP length once and the camera replays it.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CACHE_DIR = Path(tempfile.gettempdir()) / "camgate-bench-clips"


@dataclass(frozen=True)
class ClipSpec:
    gop_frames: int
    width: int = 1920
    height: int = 1080
    fps: int = 30
    kbps: int = 4000
    # 12 s is a whole number of GOPs at both 2 s and 4 s, so loops keep the GOP length.
    frames: int = 360

    @property
    def gop_s(self) -> float:
        return self.gop_frames / self.fps

    @property
    def filename(self) -> str:
        return (
            f"testsrc2-{self.width}x{self.height}p{self.fps}-{self.kbps}k-"
            f"gop{self.gop_frames}-{self.frames}f.h264"
        )


def ensure_clip(spec: ClipSpec, cache_dir: Path = CACHE_DIR) -> Path:
    """The clip's Annex-B file, encoding it first if it is not cached."""
    if spec.frames % spec.gop_frames:
        raise ValueError("the clip must hold whole GOPs so that loops keep the GOP length")
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / spec.filename
    if path.exists() and path.stat().st_size > 0:
        return path
    partial = path.with_suffix(".part")
    x264 = (
        f"keyint={spec.gop_frames}:min-keyint={spec.gop_frames}:scenecut=0:bframes=0:"
        "repeat-headers=1"
    )
    # fmt: off
    argv = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={spec.width}x{spec.height}:rate={spec.fps}",
        "-frames:v", str(spec.frames),
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-level:v", "4.0",
        "-pix_fmt", "yuv420p",
        "-b:v", f"{spec.kbps}k", "-maxrate", f"{spec.kbps}k", "-bufsize", f"{spec.kbps}k",
        "-x264-params", x264, "-f", "h264", str(partial),
    ]
    # fmt: on
    subprocess.run(argv, check=True, timeout=300)
    partial.rename(path)
    return path

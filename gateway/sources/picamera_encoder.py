"""picamera2's H.264 encoder, made to work with the PyAV camgate installs.

A Pi 3/4 (and Zero 2 W) encodes in hardware (picamera2's V4L2 `H264Encoder`); a Pi 5 has
no video encoder, and picamera2 gives it `LibavH264Encoder` (libx264 through PyAV) under
the same name. Two things in that encoder depend on the PyAV version:

- `force_key_frame()` makes the next frame `frame.pict_type = "I"`: PyAV >= 14 accepts
  only its `PictureType` enum there and raises TypeError on picamera2's camera thread,
  which stops the pictures and leaves `stop_recording()` waiting for that dead thread.
  camgate never calls it on this encoder: `LibavKeyframes` marks the next frame itself,
  with whatever value the installed PyAV takes (found by trying it on a frame at start).
- `profile=` is applied through `stream.profiles`/`stream.profile`, which PyAV 13 does
  not have (the encoder fails to start): `usable_profile()` tries the same calls first
  and, where they fail, leaves the profile to libx264 (constrained baseline) and says so.

Everything here that uses picamera2's private names (`_start`, `_stream`) is in this
module, checked when the camera starts; if a picamera2 release changes them, camgate
logs it and new viewers start from the cached GOP instead of a fresh keyframe.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from types import ModuleType
from typing import Any

log = logging.getLogger("camgate.picamera")


MIN_PYAV = (14, 0)  # picamera2 0.3.2x+ passes width= to VideoFrame.from_numpy_buffer()


def pyav_too_old(av: ModuleType) -> str | None:
    """Why this PyAV can't run picamera2's LibavH264Encoder, or None."""
    try:
        version = tuple(int(part) for part in av.__version__.split(".")[:2])
    except ValueError:
        return None  # a development build: let it try
    if version >= MIN_PYAV:
        return None
    return (
        f"PyAV {av.__version__} is too old for picamera2's software H.264 encoder (the Pi 5's): "
        f"it needs PyAV >= {MIN_PYAV[0]}; camgate's virtualenv installs it from PyPI "
        "(reinstall with deploy/raspberrypi/install.sh)"
    )


def keyframe_picture_type(av: ModuleType) -> Any | None:
    """What `VideoFrame.pict_type` takes for "encode this as an I-frame" in this PyAV
    (the enum in PyAV >= 14, the enum or "I" before), or None if neither works."""
    frame = av.VideoFrame(16, 16, "yuv420p")
    picture_type = getattr(av.video.frame, "PictureType", None)
    candidates = [getattr(picture_type, "I", None), "I"]
    for candidate in candidates:
        if candidate is None:
            continue
        try:
            frame.pict_type = candidate
        except (TypeError, ValueError, KeyError, AttributeError):
            continue
        return candidate
    return None


def usable_profile(av: ModuleType, profile: str | None) -> tuple[str | None, str | None]:
    """(profile to give LibavH264Encoder, why it was dropped or None): the encoder's own
    steps (find the name in `stream.profiles`, set `stream.profile`) on a throwaway
    stream, so a PyAV that can't do them never fails the camera's start."""
    if profile is None:
        return None, None
    try:
        with contextlib.closing(av.open("/dev/null", "w", format="null")) as container:
            stream = container.add_stream("h264", rate=30)
            names = [p for p in stream.profiles if p.lower() == profile.lower()]
            if not names:
                return None, f"libx264 here has no {profile!r} profile"
            stream.profile = names[0]
    except Exception as exc:
        return None, f"PyAV {av.__version__} can't set an encoder profile ({exc})"
    return profile, None


class LibavKeyframes:
    """Forces keyframes on a LibavH264Encoder by marking the next frame handed to libx264
    (with repeat=True its SPS/PPS come with it): the encoder's own force_key_frame()
    path is never used. request() is safe from any thread."""

    def __init__(self, encoder: Any, picture_type: Any) -> None:
        self._encoder = encoder
        self._picture_type = picture_type
        self._pending = threading.Event()
        self.working = True
        self._hook_start()

    def request(self) -> bool:
        if not self.working:
            return False
        self._pending.set()
        return True

    def _hook_start(self) -> None:
        original_start = getattr(self._encoder, "_start", None)
        if not callable(original_start):
            self.disable("picamera2's LibavH264Encoder has no _start()")
            return

        def start_then_wrap_stream() -> None:
            original_start()
            stream = getattr(self._encoder, "_stream", None)
            if stream is None or not callable(getattr(stream, "encode", None)):
                self.disable("picamera2's LibavH264Encoder has no _stream.encode()")
                return
            self._encoder._stream = _KeyframeStream(stream, self)

        self._encoder._start = start_then_wrap_stream

    def mark(self, frame: Any) -> None:
        """On the camera thread, for each frame before it is encoded."""
        if frame is None or not self._pending.is_set():
            return
        self._pending.clear()
        try:
            frame.pict_type = self._picture_type
        except Exception as exc:  # checked at start, so only a surprise PyAV lands here
            self.disable(f"a frame refused pict_type {self._picture_type!r}: {exc}")

    def disable(self, why: str) -> None:
        """Keyframes can't be forced: say why once; request() returns False from now on."""
        if not self.working:
            return
        self.working = False
        log.warning(
            "Pi camera: cannot force keyframes (%s); new viewers start from the last "
            "keyframe instead",
            why,
        )


class _KeyframeStream:
    """The encoder's PyAV stream, with frames marked on their way into encode()."""

    def __init__(self, stream: Any, keyframes: LibavKeyframes) -> None:
        self._stream = stream
        self._keyframes = keyframes

    def encode(self, frame: Any = None) -> Any:
        self._keyframes.mark(frame)
        return self._stream.encode(frame)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

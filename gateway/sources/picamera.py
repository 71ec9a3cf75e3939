"""The Pi's own camera through picamera2: the hardware H.264 encoder's output goes straight
into the same AccessUnit path as RTSP (one encoder, every viewer).

picamera2 is imported only when such a camera is configured (it needs libcamera, which
only exists on Raspberry Pi OS). The encoder thread calls our Output for each encoded
frame; frames cross to the event loop with call_soon_threadsafe, so neither side waits.
Unlike an RTSP camera, this one makes a keyframe when asked (`force_key_frame()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from gateway.config import PicameraSettings
from gateway.media.accessunit import VIDEO_CLOCK_RATE, AccessUnit
from gateway.media.h264 import split_annexb
from gateway.sources.base import SourceError

log = logging.getLogger("camgate.picamera")

INSTALL_HINT = (
    "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install python3-picamera2` "
    "and create camgate's virtualenv with --system-site-packages (deploy/raspberrypi/"
    "install.sh does both)"
)
STALL_TIMEOUT_S = 5.0  # no frame for this long: the camera is gone (unplugged, crashed)
# /proc/device-tree links here; the unit's ProcSubset=pid hides /proc/device-tree.
DEVICE_MODEL = Path("/sys/firmware/devicetree/base/model")


def import_picamera2() -> tuple[ModuleType, ModuleType, ModuleType, ModuleType]:
    """(picamera2, picamera2.encoders, picamera2.outputs, libcamera), or SourceError."""
    try:
        return (
            importlib.import_module("picamera2"),
            importlib.import_module("picamera2.encoders"),
            importlib.import_module("picamera2.outputs"),
            importlib.import_module("libcamera"),
        )
    except ImportError as exc:
        raise SourceError(f"{INSTALL_HINT} ({exc})") from None


def pi_camera_present(model_file: Path = DEVICE_MODEL) -> bool:
    """True on a Raspberry Pi with picamera2 installed and a camera attached."""
    try:
        if "raspberry pi" not in model_file.read_text(errors="replace").lower():
            return False
    except OSError:
        return False
    try:
        picamera2 = importlib.import_module("picamera2")
        return bool(picamera2.Picamera2.global_camera_info())
    except Exception:  # not installed, or libcamera failing: no Pi camera for us
        return False


class PicameraSource:
    sdp_parameter_sets: list[bytes] = []  # repeat=True: SPS/PPS come before every IDR
    fresh_keyframes = True  # a new viewer gets a new IDR instead of the cached GOP

    def __init__(self, settings: PicameraSettings) -> None:
        self.settings = settings
        s = settings
        self.description = f"Pi camera {s.camera} {s.width}x{s.height}@{s.framerate} H.264"
        self._encoder: Any = None
        self.keyframes_forced = 0

    def request_keyframe(self) -> bool:
        encoder = self._encoder
        if encoder is None:
            return False
        encoder.force_key_frame()  # only bumps a counter: safe from the event loop
        self.keyframes_forced += 1
        return True

    async def run(self, emit: Callable[[AccessUnit], None]) -> None:
        picamera2, encoders, outputs, libcamera = import_picamera2()
        loop = asyncio.get_running_loop()
        last_frame = [time.monotonic()]

        def deliver(unit: AccessUnit) -> None:
            last_frame[0] = unit.arrival
            emit(unit)

        class LoopOutput(outputs.Output):  # type: ignore[misc, name-defined]
            """Runs on the encoder's thread: parse and hand over, never block."""

            def outputframe(
                self,
                frame: bytes,
                keyframe: bool = True,
                timestamp: int | None = None,
                packet: Any = None,
                audio: bool = False,
            ) -> None:
                if audio:
                    return
                try:
                    unit = to_access_unit(frame, keyframe, timestamp)
                except ValueError as exc:
                    log.warning("Pi camera: dropped a frame the encoder garbled: %s", exc)
                    return
                with contextlib.suppress(RuntimeError):  # the loop is closing
                    loop.call_soon_threadsafe(deliver, unit)

        camera = await asyncio.to_thread(self._open, picamera2, libcamera)
        try:
            encoder = encoders.H264Encoder(
                bitrate=self.settings.bitrate,
                repeat=True,  # SPS/PPS before every IDR: any viewer can start at any IDR
                iperiod=self.settings.keyframe_interval,
                profile=self.settings.profile,
            )
            await asyncio.to_thread(camera.start_recording, encoder, LoopOutput())
            self._encoder = encoder
            log.info("Pi camera %d recording (%s)", self.settings.camera, self.description)
            while True:
                await asyncio.sleep(1.0)
                if time.monotonic() - last_frame[0] > STALL_TIMEOUT_S:
                    raise SourceError(
                        f"the Pi camera sent no picture for {STALL_TIMEOUT_S:g} s "
                        "(unplugged or stopped?)"
                    )
        finally:
            self._encoder = None
            await asyncio.shield(asyncio.to_thread(_close, camera))

    def _open(self, picamera2: ModuleType, libcamera: ModuleType) -> Any:
        s = self.settings
        try:
            camera = picamera2.Picamera2(s.camera)
        except IndexError:
            raise SourceError(
                f"no Pi camera {s.camera} found: is it connected (ribbon cable) and detected "
                "(`rpicam-hello --list-cameras`)?"
            ) from None
        except RuntimeError as exc:
            if "busy" in str(exc).lower():
                raise SourceError(
                    "the Pi camera is busy: another program is using it (e.g. rpicam-vid, "
                    "motion); stop it and camgate retries"
                ) from None
            raise SourceError(f"the Pi camera failed to open: {exc}") from None
        try:
            flip_h = s.hflip != (s.rotation == 180)  # 180 degrees = both flips
            flip_v = s.vflip != (s.rotation == 180)
            config = camera.create_video_configuration(
                main={"size": (s.width, s.height)},
                controls={"FrameRate": s.framerate},
                transform=libcamera.Transform(hflip=int(flip_h), vflip=int(flip_v)),
            )
            camera.configure(config)
        except Exception as exc:
            _close(camera)
            raise SourceError(f"the Pi camera refused the configuration: {exc}") from None
        return camera


def to_access_unit(frame: bytes, keyframe: bool, timestamp_us: int | None) -> AccessUnit:
    """One encoded frame (Annex-B) with the encoder's microsecond timestamp."""
    nals = split_annexb(bytes(frame))
    if not nals:
        raise ValueError("no NAL units in the frame")
    now = time.monotonic()
    micros = timestamp_us if timestamp_us is not None else int(now * 1_000_000)
    return AccessUnit(tuple(nals), micros * VIDEO_CLOCK_RATE // 1_000_000, bool(keyframe), now)


def _close(camera: Any) -> None:
    """Stop the encoder and release the camera; never raises (shutting down anyway)."""
    for step in ("stop_recording", "close"):
        try:
            getattr(camera, step)()
        except Exception as exc:
            log.debug("Pi camera %s: %s", step, exc)

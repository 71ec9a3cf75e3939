"""The Pi's own camera through picamera2: the H.264 encoder's output goes straight into
the same AccessUnit path as RTSP (one encoder, every viewer).

picamera2 is imported only when such a camera is configured (it needs libcamera, which
only exists on Raspberry Pi OS). The encoder thread calls our Output for each encoded
frame; frames cross to the event loop with call_soon_threadsafe, so neither side waits.
Unlike an RTSP camera, this one makes a keyframe when asked: the Pi 3/4's hardware
encoder through `force_key_frame()`, the Pi 5's software one (libx264 via PyAV) through
picamera_encoder.py, which copes with every PyAV version.

A sub stream (`substream:`) is the ISP's low-resolution output ("lores") with an encoder
of its own on the same Picamera2: PicameraDevice is that one camera, shared by the main
and the sub stream's Sources (each its own hub) and started and stopped with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, Literal

from msgspec import Meta, field

from gateway.config_model import Section, default_in_words, invalid, shorthand
from gateway.media.accessunit import VIDEO_CLOCK_RATE, AccessUnit
from gateway.media.audio import AudioFormat, AudioPacket
from gateway.media.h264 import split_annexb
from gateway.sources.base import SourceError
from gateway.sources.capture_clock import CaptureClock
from gateway.sources.picamera_audio import (
    InputOpener,
    Microphone,
    MicrophoneSettings,
    open_alsa,
)
from gateway.sources.picamera_encoder import (
    LibavKeyframes,
    keyframe_picture_type,
    pyav_too_old,
    usable_profile,
)
from gateway.sources.registry import CameraKind, SourceSetup, register

if TYPE_CHECKING:
    from gateway.config import CameraConfig

log = logging.getLogger("camgate.picamera")


class PicameraSubstream(Section, frozen=True):
    """`substream:` under `picamera:`: a second, smaller stream of the same sensor (the
    ISP's low-resolution output with an H.264 encoder of its own); `substream: off`: none."""

    enabled: bool = True
    width: Annotated[int, Meta(ge=64, le=1920)] = 640
    height: Annotated[
        Annotated[int, Meta(ge=64, le=1080)] | None,
        default_in_words("the main stream's shape at that width"),
    ] = None
    bitrate: Annotated[int, Meta(ge=100_000, le=25_000_000)] = 500_000  # bits per second

    def __post_init__(self) -> None:
        if self.width % 2 or (self.height or 0) % 2:
            raise ValueError("width and height must be even numbers")


def _substream_switch(value: Any) -> Any:
    """`substream: off` (YAML reads a bare off as false)."""
    return {"enabled": False} if value is False or value == "off" else value


# The Pi 3/4's H.264 block (also the Zero 2 W's) is rated for H.264 level 4.0: 245,760
# macroblocks a second, one 1080p30 stream, which its instances share.
HARDWARE_MACROBLOCKS_PER_S = 245_760


def macroblocks_per_s(width: int, height: int, framerate: int) -> int:
    return -(-width // 16) * -(-height // 16) * framerate


class PicameraSettings(Section, frozen=True):
    """A camera's `picamera:` block: the Pi's own camera (picamera2, hardware H.264 on
    Pi 3/4/Zero 2 W)."""

    camera: Annotated[int, Meta(ge=0, le=15)] = 0  # index among the Pi's cameras
    width: Annotated[int, Meta(ge=64, le=1920)] = 1280
    height: Annotated[int, Meta(ge=64, le=1080)] = 720
    framerate: Annotated[int, Meta(ge=1, le=120)] = 30
    bitrate: Annotated[int, Meta(ge=100_000, le=25_000_000)] = 3_000_000  # bits per second
    # Frames between keyframes; None: 2 s worth.
    iperiod: Annotated[
        Annotated[int, Meta(ge=1, le=1000)] | None, default_in_words("2 seconds of frames")
    ] = None
    profile: Literal["baseline", "main", "high"] = "main"
    hflip: bool = False
    vflip: bool = False
    rotation: int = 0  # 0 or 180
    # A microphone on the Pi (ALSA): the camera then has sound.
    audio: MicrophoneSettings | None = None
    # The second, smaller stream (docs/streams.md "The Pi camera").
    substream: Annotated[PicameraSubstream, shorthand(_substream_switch)] = field(
        default_factory=PicameraSubstream
    )

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2:
            raise ValueError("width and height must be even numbers")
        if self.rotation not in (0, 180):
            raise invalid(
                "rotation",
                f"{self.rotation!r}: the Pi camera turns by 0 or 180 degrees only "
                "(use hflip/vflip for mirror images)",
            )
        size = self._substream_wanted()
        if size is not None and self.substream != PicameraSubstream():  # set by the user
            width, height = size
            if width > self.width or height > self.height:
                raise invalid(
                    "substream",
                    f"{width}x{height} is larger than the main stream ({self.width}x"
                    f"{self.height}): the sub stream must be smaller in both directions",
                )
            if (width, height) == (self.width, self.height):
                raise invalid(
                    "substream",
                    f"{width}x{height} is the main stream's size: make it smaller or "
                    "write `substream: off`",
                )

    @property
    def keyframe_interval(self) -> int:
        return self.iperiod if self.iperiod is not None else 2 * self.framerate

    @property
    def substream_size(self) -> tuple[int, int] | None:
        """The sub stream's (width, height), or None: `substream: off`, or the default
        one would not be smaller than the main stream."""
        size = self._substream_wanted()
        if size is None or size[0] > self.width or size[1] > self.height:
            return None
        return None if size == (self.width, self.height) else size

    def _substream_wanted(self) -> tuple[int, int] | None:
        sub = self.substream
        if not sub.enabled:
            return None
        if sub.height is not None:
            return sub.width, sub.height
        # The main stream's shape: the low-resolution output is scaled from the same crop.
        return sub.width, max(2, round(sub.width * self.height / self.width / 2) * 2)

    def hardware_encoder_overload(self) -> str | None:
        """Why the Pi 3/4's hardware encoder can't carry the main and the sub stream
        together at this size and frame rate, or None."""
        size = self.substream_size
        if size is None:
            return None
        main = macroblocks_per_s(self.width, self.height, self.framerate)
        sub = macroblocks_per_s(*size, self.framerate)
        if main + sub <= HARDWARE_MACROBLOCKS_PER_S:
            return None
        return (
            f"the Pi's hardware H.264 encoder can't encode {self.width}x{self.height} and "
            f"{size[0]}x{size[1]} at {self.framerate} fps together (it does one 1080p30 "
            "stream's worth): lower the main stream's size or frame rate, or set "
            "`substream: off`"
        )


INSTALL_HINT = (
    "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install python3-picamera2` "
    "and create camgate's virtualenv with --system-site-packages (deploy/raspberrypi/"
    "install.sh does both)"
)
STALL_TIMEOUT_S = 5.0  # no frame for this long: the camera is gone (unplugged, crashed)
STOP_TIMEOUT_S = 10.0  # picamera2's stop waits on its camera thread: never wait forever
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


class PicameraDevice:
    """One Pi camera (one sensor), shared by its main and sub stream: opened, configured
    (main and, when there is a sub stream, the ISP's low-resolution output) and started
    when the first stream starts; each stream adds and removes its own encoder
    (picamera2's start_encoder/stop_encoder); stopped and closed when the last one stops."""

    def __init__(self, settings: PicameraSettings) -> None:
        self.settings = settings
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._camera: Any = None
        self._encoders: list[Any] = []

    @property
    def open(self) -> bool:
        return self._camera is not None

    @property
    def streams(self) -> int:
        """How many encoders run on the camera now."""
        return len(self._encoders)

    def _locked(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:  # (a new loop: tests)
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def start_encoder(
        self, stream: str, make_encoder: Callable[[ModuleType], Any], output: Any
    ) -> Any:
        """Open and start the camera if no stream runs yet, then start a new encoder
        (from `make_encoder(picamera2.encoders)`) on `stream` ("main" or "lores")."""
        # Opening and starting run on worker threads that a cancel can't stop: let them
        # finish, then undo, so no camera or encoder is left running that nobody stops.
        starting = asyncio.ensure_future(self._start_encoder(stream, make_encoder, output))
        try:
            return await asyncio.shield(starting)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await self.stop_encoder(await starting)
            raise

    async def _start_encoder(
        self, stream: str, make_encoder: Callable[[ModuleType], Any], output: Any
    ) -> Any:
        picamera2, encoders, _, libcamera = import_picamera2()
        async with self._locked():
            if self._camera is None:
                self._camera = await asyncio.to_thread(self._open, picamera2, libcamera)
            camera = self._camera
            try:
                encoder = await asyncio.to_thread(make_encoder, encoders)
                try:
                    await asyncio.to_thread(_start_encoder, camera, encoder, output, stream)
                except Exception as exc:
                    raise SourceError(f"the Pi camera's encoder failed to start: {exc}") from None
            except BaseException:
                if not self._encoders:
                    self._camera = None
                    await asyncio.shield(stop_bounded(camera))
                raise
            self._encoders.append(encoder)
            return encoder

    async def stop_encoder(self, encoder: Any) -> None:
        """Stop this stream's encoder; the last one stops and closes the camera too."""
        async with self._locked():
            if encoder not in self._encoders:
                return
            self._encoders.remove(encoder)
            camera = self._camera
            if self._encoders:
                done = await _on_daemon_thread(
                    lambda: camera.stop_encoder(encoder), STOP_TIMEOUT_S, "stop_encoder"
                )
                if not done:
                    log.error("Pi camera: stop_encoder() did not return (camera thread stuck?)")
                return
            self._camera = None
            await stop_bounded(camera)

    def _open(self, picamera2: ModuleType, libcamera: ModuleType) -> Any:
        s = self.settings
        try:
            camera = picamera2.Picamera2(s.camera)
        except (IndexError, RuntimeError) as exc:
            raise open_error(s.camera, exc) from None
        try:
            flip_h = s.hflip != (s.rotation == 180)  # 180 degrees = both flips
            flip_v = s.vflip != (s.rotation == 180)
            sub = s.substream_size
            config = camera.create_video_configuration(
                # YUV420 is what both encoders take without converting each frame (and
                # the only format a Pi 3/4's low-resolution output has).
                main={"size": (s.width, s.height), "format": "YUV420"},
                lores={"size": sub, "format": "YUV420"} if sub else None,
                controls={"FrameRate": s.framerate},
                transform=libcamera.Transform(hflip=int(flip_h), vflip=int(flip_v)),
            )
            camera.configure(config)
        except Exception as exc:
            _close(camera)
            raise SourceError(f"the Pi camera refused the configuration: {exc}") from None
        return camera


def _start_encoder(camera: Any, encoder: Any, output: Any, stream: str) -> None:
    """On a worker thread: the encoder joins the running camera, or starts it."""
    camera.start_encoder(encoder, output, name=stream)
    if not camera.started:
        try:
            camera.start()
        except Exception:
            camera.stop_encoder(encoder)
            raise


# One device per camera index while a stream of it exists: the main and the sub stream's
# Sources (built afresh for each connection) find the same one.
_DEVICES: weakref.WeakValueDictionary[int, PicameraDevice] = weakref.WeakValueDictionary()


def shared_device(settings: PicameraSettings) -> PicameraDevice:
    device = _DEVICES.get(settings.camera)
    if device is None or device.settings != settings:
        device = PicameraDevice(settings)
        _DEVICES[settings.camera] = device
    return device


class _PicameraStream:
    """One H.264 stream of the Pi camera: its own encoder on the shared device."""

    sdp_parameter_sets: list[bytes] = []  # repeat=True: SPS/PPS come before every IDR
    # A new viewer gets a new IDR instead of the cached GOP (False once forcing fails).
    fresh_keyframes = True
    stream = "main"  # picamera2's name of the camera output it encodes

    def __init__(
        self,
        settings: PicameraSettings,
        device: PicameraDevice | None,
        size: tuple[int, int],
        bitrate: int,
    ) -> None:
        self.settings = settings
        self.device = device if device is not None else shared_device(settings)
        self.size = size
        self.bitrate = bitrate
        self.description = (
            f"Pi camera {settings.camera} {size[0]}x{size[1]}@{settings.framerate} H.264"
        )
        self._encoder: Any = None
        self._libav_keyframes: LibavKeyframes | None = None

    def request_keyframe(self) -> bool:
        """Ask the encoder for an IDR; from the event loop, never blocks or raises."""
        encoder = self._encoder
        if encoder is None:
            return False
        if self._libav_keyframes is not None:
            asked = self._libav_keyframes.request()
            if not asked:
                self.fresh_keyframes = False
        else:
            try:
                encoder.force_key_frame()  # V4L2: only bumps a counter its thread reads
                asked = True
            except Exception as exc:
                log.warning("Pi camera: keyframe request failed: %s", exc)
                asked = False
        return asked

    async def run(self, emit: Callable[[AccessUnit], None]) -> None:
        _, _, outputs, _ = import_picamera2()
        loop = asyncio.get_running_loop()
        last_frame = [time.monotonic()]
        capture_clock = CaptureClock()  # sensor time since the first frame -> Unix time

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
                    unit = to_access_unit(frame, keyframe, timestamp, capture_clock)
                except ValueError as exc:
                    log.warning("Pi camera: dropped a frame the encoder garbled: %s", exc)
                    return
                with contextlib.suppress(RuntimeError):  # the loop is closing
                    loop.call_soon_threadsafe(deliver, unit)

        encoder = await self.device.start_encoder(self.stream, self._make_encoder, LoopOutput())
        try:
            self._encoder = encoder
            log.info("Pi camera %d recording (%s)", self.settings.camera, self.description)
            self._started()
            last_frame[0] = time.monotonic()
            while True:
                await asyncio.sleep(1.0)
                if time.monotonic() - last_frame[0] > STALL_TIMEOUT_S:
                    raise SourceError(
                        f"the Pi camera sent no picture for {STALL_TIMEOUT_S:g} s "
                        "(unplugged or stopped?)"
                    )
        finally:
            self._encoder = None
            self._libav_keyframes = None
            await asyncio.shield(self._stopping())
            await asyncio.shield(self.device.stop_encoder(encoder))

    def _started(self) -> None:
        """The encoder runs (the main stream starts its microphone here)."""

    async def _stopping(self) -> None:
        """Before the encoder stops."""

    def _check_hardware(self) -> None:
        """On a Pi 3/4 (hardware encoder), before this stream's encoder is made."""

    def _make_encoder(self, encoders: ModuleType) -> Any:
        """picamera2's H264Encoder: hardware on a Pi 3/4, LibavH264Encoder on a Pi 5."""
        s = self.settings
        profile: str | None = s.profile
        av: ModuleType | None = None
        if getattr(encoders, "LibavH264Encoder", None) is encoders.H264Encoder:  # a Pi 5
            av = importlib.import_module("av")
            too_old = pyav_too_old(av)
            if too_old:
                raise SourceError(too_old)
            profile, why = usable_profile(av, s.profile)
            if why:
                log.warning("Pi camera: H.264 profile %r not set: %s", s.profile, why)
        else:
            self._check_hardware()
        encoder = encoders.H264Encoder(
            bitrate=self.bitrate,
            repeat=True,  # SPS/PPS before every IDR: any viewer can start at any IDR
            iperiod=s.keyframe_interval,
            framerate=s.framerate,
            profile=profile,
        )
        self._libav_keyframes = None
        if av is not None:
            picture_type = keyframe_picture_type(av)
            keyframes = LibavKeyframes(encoder, picture_type)
            if picture_type is None:
                keyframes.disable(f"PyAV {av.__version__} takes neither PictureType.I nor 'I'")
            self._libav_keyframes = keyframes
            if not keyframes.working:
                self.fresh_keyframes = False
        return encoder


class PicameraSource(_PicameraStream):
    """The Pi camera's main stream."""

    def __init__(self, settings: PicameraSettings, device: PicameraDevice | None = None) -> None:
        super().__init__(settings, device, (settings.width, settings.height), settings.bitrate)
        self._microphone: Microphone | None = None  # PicameraWithMicrophone's
        self._emit_audio: Callable[[AudioPacket], None] | None = None

    def _started(self) -> None:
        if self._microphone is not None and self._emit_audio is not None:
            self._microphone.start(self._emit_audio)

    async def _stopping(self) -> None:
        if self._microphone is not None:
            await self._microphone.stop()


class PicameraSubSource(_PicameraStream):
    """The Pi camera's sub stream: the ISP's low-resolution output ("lores"), encoded by
    an encoder of its own, from the same sensor (and Picamera2) as the main stream."""

    stream = "lores"

    def __init__(self, settings: PicameraSettings, device: PicameraDevice | None = None) -> None:
        size = settings.substream_size
        if size is None:
            raise ValueError("this Pi camera has no sub stream (`substream: off`)")
        super().__init__(settings, device, size, settings.substream.bitrate)
        self.description += " (sub stream)"

    def _check_hardware(self) -> None:
        overload = self.settings.hardware_encoder_overload()
        if overload:
            raise SourceError(overload)


class PicameraWithMicrophone(PicameraSource):
    """The Pi camera with `audio:` set: AudioCapable and ListenerAware (gateway.sources.base)."""

    def __init__(self, settings: PicameraSettings, open_input: InputOpener = open_alsa) -> None:
        super().__init__(settings)
        assert settings.audio is not None
        self._microphone = Microphone(settings.audio, open_input)
        self.description += f" + microphone {settings.audio.device}"

    @property
    def microphone(self) -> Microphone:
        assert self._microphone is not None
        return self._microphone

    @property
    def audio_format(self) -> AudioFormat | None:
        return self.microphone.format

    @property
    def audio_refused(self) -> str | None:
        return self.microphone.refused

    def attach_audio(self, emit_audio: Callable[[AudioPacket], None]) -> None:
        self._emit_audio = emit_audio

    def audio_listening(self, listening: bool) -> None:
        """ListenerAware: the microphone records only while someone listens."""
        self.microphone.set_listening(listening)


def open_error(index: int, exc: BaseException) -> SourceError:
    """picamera2's errors when opening a camera, as a message that says what to do.
    (It wraps libcamera's "Failed to acquire camera: Device or resource busy" in
    "Camera __init__ sequence did not complete.": the cause chain has the reason.)"""
    chain: list[str] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 10:
        chain.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    text = " / ".join(chain)
    if isinstance(exc, IndexError) or text.lower().startswith("no camera number"):
        return SourceError(
            f"no Pi camera {index} found: is it connected (ribbon cable) and detected "
            "(`rpicam-hello --list-cameras`)?"
        )
    if "busy" in text.lower():
        return SourceError(
            "the Pi camera is busy: another program is using it (e.g. rpicam-vid, "
            "motion); stop it and camgate retries"
        )
    return SourceError(f"the Pi camera failed to open: {text}")


def to_access_unit(
    frame: bytes,
    keyframe: bool,
    timestamp_us: int | None,
    capture_clock: CaptureClock | None = None,
) -> AccessUnit:
    """One encoded frame (Annex-B) with the encoder's microsecond timestamp (sensor time
    since the first frame); `capture_clock` turns it into the capture time."""
    nals = split_annexb(bytes(frame))
    if not nals:
        raise ValueError("no NAL units in the frame")
    now = time.monotonic()
    micros = timestamp_us if timestamp_us is not None else int(now * 1_000_000)
    capture = capture_clock.capture(micros / 1_000_000, now) if capture_clock else None
    pts = micros * VIDEO_CLOCK_RATE // 1_000_000
    return AccessUnit(tuple(nals), pts, bool(keyframe), now, capture)


def _close(camera: Any) -> None:
    """Stop the encoder and release the camera; never raises (shutting down anyway)."""
    for step in ("stop_recording", "close"):
        try:
            getattr(camera, step)()
        except Exception as exc:
            log.debug("Pi camera %s: %s", step, exc)


async def stop_bounded(camera: Any, timeout: float | None = None) -> bool:
    """_close(camera) on a thread of its own, waited for at most `timeout` seconds.

    picamera2's stop_recording() hands the stop to its camera thread and waits for it
    without a timeout: if that thread died (an exception in an encoder), it never
    returns. Then close() alone (it stops the camera directly once the dead thread is
    detached) frees the camera, so camgate can open it again; the stuck thread is a
    daemon and goes away with the process."""
    timeout = STOP_TIMEOUT_S if timeout is None else timeout
    if await _on_daemon_thread(lambda: _close(camera), timeout, "stop"):
        return True
    log.error(
        "Pi camera: stop_recording() did not return within %g s (picamera2's camera "
        "thread has stopped); closing the camera directly",
        timeout,
    )
    if await _on_daemon_thread(camera.close, timeout, "close"):
        return False
    log.error("Pi camera: close() did not return either: restart camgate to free the camera")
    return False


async def _on_daemon_thread(work: Callable[[], None], timeout: float, what: str) -> bool:
    """Run `work` on a new daemon thread; True if it finished within `timeout`."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def target() -> None:
        try:
            work()
        except Exception as exc:
            log.debug("Pi camera %s: %s", what, exc)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(done.set)

    threading.Thread(target=target, name=f"picamera-{what}", daemon=True).start()
    try:
        await asyncio.wait_for(done.wait(), timeout)
    except TimeoutError:
        return False
    return True


def _build(setup: SourceSetup) -> PicameraSource:
    settings: PicameraSettings = PICAMERA.settings_of(setup.camera)
    if settings.audio is not None:
        return PicameraWithMicrophone(settings)
    return PicameraSource(settings)


def _build_substream(setup: SourceSetup) -> PicameraSubSource | None:
    settings: PicameraSettings = PICAMERA.settings_of(setup.camera)
    if settings.substream_size is None:
        return None
    return PicameraSubSource(settings)


def _describe(camera: CameraConfig) -> str:
    settings: PicameraSettings = PICAMERA.settings_of(camera)
    return f"picamera {settings.camera}"


PICAMERA = register(
    CameraKind(
        name="picamera",
        model="Raspberry Pi camera",
        settings=PicameraSettings,
        build=_build,
        describe=_describe,
        takes_source=lambda source: source == "picamera",
        source_hint="'picamera'",
        block_alone=True,  # `picamera: {...}` alone is enough
        build_substream=_build_substream,
    )
)

"""libcamera's Python API (the pybind11 module `libcamera._libcamera`), for what picamera2
touches, over a simulated sensor.

Names, arguments, enums and errors follow libcamera's binding: `Camera.acquire()` on a
camera that is in use raises RuntimeError("Failed to acquire camera: Device or resource
busy"), requests complete through `CameraManager.event_fd` and `get_ready_requests()`,
frame buffers are the file descriptors the application allocated. The sensor is a thread
per started camera that fills each queued request's buffers with a moving YUV420 picture
at the frame duration the controls ask for and stamps SensorTimestamp, as the Pi's ISP
would. Tests steer it through `RIG`: how many cameras are attached, which one another
program holds, a pulled ribbon cable (`unplugged`: no more frames).
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import threading
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

__all__ = [
    "Camera",
    "CameraConfiguration",
    "CameraManager",
    "ColorSpace",
    "ControlId",
    "ControlInfo",
    "ControlType",
    "FrameBuffer",
    "FrameMetadata",
    "Orientation",
    "PixelFormat",
    "Rectangle",
    "Request",
    "SensorConfiguration",
    "Size",
    "Stream",
    "StreamConfiguration",
    "StreamFormats",
    "StreamRole",
    "Transform",
]


@dataclass
class SimulatedCameras:
    """What the tests change about the attached hardware, and what they read back."""

    cameras: int = 1
    held_elsewhere: set[int] = field(default_factory=set)  # another program has these open
    unplugged: threading.Event = field(default_factory=threading.Event)
    frames_captured: int = 0
    starts: int = 0
    stops: int = 0

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


RIG = SimulatedCameras()


# -- geometry, formats, transforms, colour spaces -------------------------------------------


class Size:
    def __init__(self, width: int = 0, height: int = 0) -> None:
        self.width, self.height = int(width), int(height)

    def __repr__(self) -> str:
        return f"libcamera.Size({self.width}, {self.height})"

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


class Rectangle:
    def __init__(self, x: int = 0, y: int = 0, width: int = 0, height: int = 0) -> None:
        self.x, self.y, self.width, self.height = int(x), int(y), int(width), int(height)

    def __repr__(self) -> str:
        return f"libcamera.Rectangle({self.x}, {self.y}, {self.width}, {self.height})"


class PixelFormat:
    def __init__(self, name: str) -> None:
        self._name = str(name)

    def __str__(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"libcamera.PixelFormat('{self._name}')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PixelFormat) and other._name == self._name

    def __hash__(self) -> int:
        return hash(self._name)


class Orientation(IntEnum):  # EXIF orientation numbers, as libcamera's
    Rotate0 = 1
    Rotate0Mirror = 2
    Rotate180 = 3
    Rotate180Mirror = 4
    Rotate90Mirror = 5
    Rotate270 = 6
    Rotate270Mirror = 7
    Rotate90 = 8


_TRANSFORM_NAMES = {
    (False, False, False): "identity",
    (True, False, False): "hflip",
    (False, True, False): "vflip",
    (True, True, False): "hvflip",
    (False, False, True): "transpose",
    (True, False, True): "rot270",
    (False, True, True): "rot90",
    (True, True, True): "rot180transpose",
}


class Transform:
    """Transform(rotation=0, hflip=False, vflip=False, transpose=False), or a copy."""

    def __init__(
        self,
        rotation: int | Transform = 0,
        hflip: bool = False,
        vflip: bool = False,
        transpose: bool = False,
    ) -> None:
        if isinstance(rotation, Transform):
            other = rotation
            self.hflip, self.vflip, self.transpose = other.hflip, other.vflip, other.transpose
            return
        if rotation not in (0, 180):
            raise ValueError(f"Invalid rotation {rotation}")  # 90/270 need transpose: unused
        self.hflip = bool(hflip) != (rotation == 180)
        self.vflip = bool(vflip) != (rotation == 180)
        self.transpose = bool(transpose)

    def __str__(self) -> str:
        return _TRANSFORM_NAMES[(self.hflip, self.vflip, self.transpose)]


class ColorSpace:
    class Primaries(IntEnum):
        Raw = 0
        Smpte170m = 1
        Rec709 = 2
        Rec2020 = 3

    class TransferFunction(IntEnum):
        Linear = 0
        Srgb = 1
        Rec709 = 2

    class YcbcrEncoding(IntEnum):
        Null = 0
        Rec601 = 1
        Rec709 = 2
        Rec2020 = 3

    class Range(IntEnum):
        Full = 0
        Limited = 1

    def __init__(
        self,
        primaries: Any = 0,
        transferFunction: Any = 0,
        ycbcrEncoding: Any = 0,
        range: Any = 0,
    ) -> None:
        if isinstance(primaries, ColorSpace):
            other = primaries
            primaries, transferFunction = other.primaries, other.transferFunction
            ycbcrEncoding, range = other.ycbcrEncoding, other.range
        self.primaries = ColorSpace.Primaries(primaries)
        self.transferFunction = ColorSpace.TransferFunction(transferFunction)
        self.ycbcrEncoding = ColorSpace.YcbcrEncoding(ycbcrEncoding)
        self.range = ColorSpace.Range(range)

    @staticmethod
    def Raw() -> ColorSpace:
        return ColorSpace(0, 0, 0, 0)

    @staticmethod
    def Srgb() -> ColorSpace:
        return ColorSpace(2, 1, 0, 0)

    @staticmethod
    def Sycc() -> ColorSpace:
        return ColorSpace(2, 1, 1, 0)

    @staticmethod
    def Smpte170m() -> ColorSpace:
        return ColorSpace(1, 2, 1, 1)

    @staticmethod
    def Rec709() -> ColorSpace:
        return ColorSpace(2, 2, 2, 1)

    @staticmethod
    def Rec2020() -> ColorSpace:
        return ColorSpace(3, 2, 3, 1)

    def __str__(self) -> str:
        parts = (self.primaries, self.transferFunction, self.ycbcrEncoding, self.range)
        return "/".join(p.name for p in parts)


# -- controls and properties -----------------------------------------------------------------


class ControlType(IntEnum):
    Bool = 1
    Byte = 2
    Integer32 = 4
    Integer64 = 5
    Float = 6
    String = 7
    Rectangle = 8
    Size = 9
    Point = 10


class ControlId:
    def __init__(self, id: int, name: str, type: ControlType) -> None:
        self.id, self.name, self.type = id, name, type

    def __repr__(self) -> str:
        return f"libcamera.ControlId({self.id}, {self.name})"


class ControlInfo:
    def __init__(self, min: Any, max: Any, default: Any = None) -> None:
        self.min, self.max, self.default = min, max, default


class _Namespace:
    """A binding submodule (libcamera.controls, .properties, their .draft)."""

    def __init__(self, **members: Any) -> None:
        self.__dict__.update(members)


def _ids(first: int, **types: ControlType) -> dict[str, ControlId]:
    return {name: ControlId(first + n, name, t) for n, (name, t) in enumerate(types.items())}


T = ControlType
_CONTROLS = _ids(
    1,
    AeEnable=T.Bool,
    ExposureTime=T.Integer32,
    ExposureTimeMode=T.Integer32,
    AnalogueGain=T.Float,
    AnalogueGainMode=T.Integer32,
    Brightness=T.Float,
    Contrast=T.Float,
    FrameDuration=T.Integer64,
    FrameDurationLimits=T.Integer64,
    ScalerCrop=T.Rectangle,
    SensorTimestamp=T.Integer64,
)
_DRAFT_CONTROLS = _ids(10001, NoiseReductionMode=T.Integer32)
_PROPERTIES = _ids(
    20001,
    Location=T.Integer32,
    Rotation=T.Integer32,
    Model=T.String,
    PixelArraySize=T.Size,
    PixelArrayActiveAreas=T.Rectangle,
)
_DRAFT_PROPERTIES = _ids(30001, ColorFilterArrangement=T.Integer32)


class NoiseReductionModeEnum(IntEnum):
    Off = 0
    Fast = 1
    HighQuality = 2
    Minimal = 3
    ZSL = 4


class ColorFilterArrangementEnum(IntEnum):
    RGGB = 0
    GRBG = 1
    GBRG = 2
    BGGR = 3
    RGB = 4
    MONO = 5


controls = _Namespace(
    **_CONTROLS, draft=_Namespace(**_DRAFT_CONTROLS, NoiseReductionModeEnum=NoiseReductionModeEnum)
)
properties = _Namespace(
    **_PROPERTIES,
    draft=_Namespace(**_DRAFT_PROPERTIES, ColorFilterArrangementEnum=ColorFilterArrangementEnum),
)


# -- buffers, requests, streams, configurations ----------------------------------------------


class FrameMetadata:
    class Status(IntEnum):
        Success = 0
        Error = 1
        Cancelled = 2

    class Plane:
        def __init__(self, bytes_used: int = 0) -> None:
            self.bytes_used = bytes_used

    def __init__(self) -> None:
        self.status = FrameMetadata.Status.Success
        self.sequence = 0
        self.timestamp = 0
        self.planes: list[FrameMetadata.Plane] = []


class FrameBuffer:
    class Plane:
        def __init__(self) -> None:
            self.fd = -1
            self.offset = 0
            self.length = 0

    def __init__(self, planes: list[FrameBuffer.Plane], cookie: int = 0) -> None:
        self.planes = list(planes)
        self.cookie = cookie
        self.metadata = FrameMetadata()


class StreamRole(IntEnum):
    Raw = 0
    StillCapture = 1
    VideoRecording = 2
    Viewfinder = 3


class StreamFormats:
    def __init__(self, sizes: dict[str, list[tuple[int, int]]]) -> None:
        self._sizes = {PixelFormat(k): [Size(*s) for s in v] for k, v in sizes.items()}

    @property
    def pixel_formats(self) -> list[PixelFormat]:
        return list(self._sizes)

    def sizes(self, pixel_format: PixelFormat) -> list[Size]:
        return self._sizes.get(pixel_format, [])


class Stream:
    def __init__(self, configuration: StreamConfiguration) -> None:
        self.configuration = configuration


SENSOR_MODES = {"SRGGB10_CSI2P": [(1536, 864), (2304, 1296), (4608, 2592)]}  # an imx708's
YUV_RGB_FORMATS = ["YUV420", "YVU420", "NV12", "NV21", "XBGR8888", "XRGB8888", "BGR888", "RGB888"]


class StreamConfiguration:
    def __init__(self, role: StreamRole) -> None:
        raw = role == StreamRole.Raw
        self.pixel_format = PixelFormat("SRGGB10_CSI2P" if raw else "YUV420")
        self.size = Size(1536, 864) if raw else Size(1920, 1080)
        self.stride = 0
        self.frame_size = 0
        self.buffer_count = 4
        self.color_space: ColorSpace | None = ColorSpace.Raw() if raw else ColorSpace.Sycc()
        self.stream: Stream | None = None
        sizes = SENSOR_MODES if raw else {f: [(64, 64), (4608, 2592)] for f in YUV_RGB_FORMATS}
        self.formats = StreamFormats(sizes)

    def _fill_layout(self) -> None:
        """Stride and frame size as the Pi 5's ISP lays a frame out (64-byte rows)."""
        fmt, w, h = str(self.pixel_format), self.size.width, self.size.height
        if fmt in ("YUV420", "YVU420", "NV12", "NV21"):
            self.stride = _align(w, 128)  # so the half-width chroma rows stay 64-aligned
            self.frame_size = self.stride * h * 3 // 2
        else:
            depth = {"XBGR8888": 4, "XRGB8888": 4, "BGR888": 3, "RGB888": 3}.get(fmt)
            row = w * depth if depth else (w * 10 + 7) // 8  # else a packed 10-bit raw mode
            self.stride = _align(row, 64)
            self.frame_size = self.stride * h

    def __str__(self) -> str:
        return f"{self.size}-{self.pixel_format}"


class SensorConfiguration:
    def __init__(self) -> None:
        self.bit_depth = 0
        self.output_size = Size()


class CameraConfiguration:
    class Status(IntEnum):
        Valid = 0
        Adjusted = 1
        Invalid = 2

    def __init__(self, roles: list[StreamRole]) -> None:
        self._configs = [StreamConfiguration(r) for r in roles]
        self.orientation = Orientation.Rotate0
        self.sensor_config: SensorConfiguration | None = None

    def at(self, index: int) -> StreamConfiguration:
        return self._configs[index]

    @property
    def size(self) -> int:
        return len(self._configs)

    def __iter__(self) -> Any:
        return iter(self._configs)

    def __len__(self) -> int:
        return len(self._configs)

    def validate(self) -> CameraConfiguration.Status:
        status = CameraConfiguration.Status.Valid
        for config in self._configs:
            w, h = config.size.width, config.size.height
            if w <= 0 or h <= 0:
                return CameraConfiguration.Status.Invalid
            if w % 2 or h % 2:
                config.size = Size(w - w % 2, h - h % 2)
                status = CameraConfiguration.Status.Adjusted
            config._fill_layout()
        return status


class Request:
    class Status(IntEnum):
        Pending = 0
        Complete = 1
        Cancelled = 2

    class ReuseFlag(IntEnum):
        Default = 0
        ReuseBuffers = 1

    def __init__(self, camera: Camera, cookie: int) -> None:
        self._camera = camera
        self.cookie = cookie
        self.status = Request.Status.Pending
        self.sequence = 0
        self.buffers: dict[Stream, FrameBuffer] = {}
        self.metadata: dict[ControlId, Any] = {}
        self._controls: dict[ControlId, Any] = {}

    def add_buffer(self, stream: Stream, buffer: FrameBuffer) -> None:
        if stream in self.buffers:
            raise RuntimeError("Failed to add buffer: File exists")
        self.buffers[stream] = buffer

    def set_control(self, id: ControlId, value: Any) -> None:
        self._controls[id] = value

    def reuse(self, flags: Request.ReuseFlag = ReuseFlag.ReuseBuffers) -> None:
        self.status = Request.Status.Pending
        self.metadata = {}
        self._controls = {}


# -- cameras and the manager -----------------------------------------------------------------


def _align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


def _busy(action: str) -> RuntimeError:
    return RuntimeError(f"{action}: {os.strerror(errno.EBUSY)}")


class Camera:
    def __init__(self, manager: CameraManager, index: int) -> None:
        self._manager = manager
        self._index = index
        self.id = f"/base/axi/pcie@120000/rp1/i2c@88000/imx708@1a{index or ''}"
        self.properties: dict[ControlId, Any] = {
            properties.Model: "imx708",
            properties.Location: 2,
            properties.Rotation: 180,
            properties.PixelArraySize: Size(4608, 2592),
            properties.PixelArrayActiveAreas: [Rectangle(16, 24, 4608, 2592)],
            properties.draft.ColorFilterArrangement: ColorFilterArrangementEnum.BGGR,
        }
        self.controls: dict[ControlId, ControlInfo] = {
            controls.AeEnable: ControlInfo(False, True, True),
            controls.ExposureTime: ControlInfo(26, 220_417_486, 20_000),
            controls.AnalogueGain: ControlInfo(1.12, 16.0, 1.0),
            controls.Brightness: ControlInfo(-1.0, 1.0, 0.0),
            controls.Contrast: ControlInfo(0.0, 32.0, 1.0),
            controls.FrameDurationLimits: ControlInfo(8_333, 220_500_000, 33_333),
            controls.ScalerCrop: ControlInfo(Rectangle(0, 0, 64, 64), Rectangle(0, 0, 4608, 2592)),
            controls.draft.NoiseReductionMode: ControlInfo(0, 4, 0),
        }
        self._acquired = False
        self._configured: list[StreamConfiguration] = []
        self._queue: list[Request] = []
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._sensor: threading.Thread | None = None
        self._frame_duration_us = 33_333

    def acquire(self) -> None:
        if self._acquired or self._index in RIG.held_elsewhere:
            raise _busy("Failed to acquire camera")
        self._acquired = True

    def release(self) -> None:
        if self._running.is_set():
            raise _busy("Failed to release camera")
        self._acquired = False

    def generate_configuration(self, roles: list[StreamRole]) -> CameraConfiguration:
        return CameraConfiguration(roles)

    def configure(self, config: CameraConfiguration) -> int:
        if not self._acquired:
            return -errno.EACCES
        config.validate()
        for stream_config in config:
            stream_config.stream = Stream(stream_config)
        self._configured = list(config)
        return 0

    def create_request(self, cookie: int = 0) -> Request:
        return Request(self, cookie)

    def start(self, controls: dict[ControlId, Any] | None = None) -> None:
        if not self._acquired or not self._configured:
            raise RuntimeError(f"Failed to start camera: {os.strerror(errno.EACCES)}")
        self._apply(controls or {})
        self._running.set()
        RIG.starts += 1
        self._sensor = threading.Thread(target=self._capture, name="libcamera-sensor", daemon=True)
        self._sensor.start()

    def stop(self) -> None:
        if not self._running.is_set():
            return
        self._running.clear()
        if self._sensor is not None:
            self._sensor.join()
            self._sensor = None
        RIG.stops += 1
        with self._lock:  # what the sensor never filled comes back cancelled, as libcamera does
            cancelled, self._queue = self._queue, []
        for request in cancelled:
            request.status = Request.Status.Cancelled
        self._manager._complete(cancelled)

    def queue_request(self, request: Request) -> None:
        if not self._running.is_set():
            raise RuntimeError(f"Failed to queue request: {os.strerror(errno.EACCES)}")
        with self._lock:
            self._queue.append(request)

    def _apply(self, values: dict[ControlId, Any]) -> None:
        limits = values.get(controls.FrameDurationLimits)
        if limits:
            self._frame_duration_us = max(int(limits[1]), 8_333)

    # -- the simulated sensor + ISP --------------------------------------------------------

    def _capture(self) -> None:
        sequence = 0
        next_due = time.monotonic()
        while self._running.is_set():
            delay = next_due - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, 0.05))
                continue
            next_due += self._frame_duration_us / 1e6
            if RIG.unplugged.is_set():
                continue  # the cable is out: requests stay queued, nothing completes
            with self._lock:
                request = self._queue.pop(0) if self._queue else None
            if request is None:
                continue  # the application holds every buffer: the frame is dropped
            self._apply(request._controls)
            timestamp_ns = time.monotonic_ns()
            for stream, buffer in request.buffers.items():
                _paint(buffer, stream.configuration, sequence)
                buffer.metadata.status = FrameMetadata.Status.Success
                buffer.metadata.sequence = sequence
                buffer.metadata.timestamp = timestamp_ns
                buffer.metadata.planes = [FrameMetadata.Plane(p.length) for p in buffer.planes]
            request.sequence = sequence
            request.metadata = {
                controls.SensorTimestamp: timestamp_ns,
                controls.FrameDuration: self._frame_duration_us,
                controls.ExposureTime: min(self._frame_duration_us, 20_000),
                controls.AnalogueGain: 1.0,
            }
            request.status = Request.Status.Complete
            RIG.frames_captured += 1
            sequence += 1
            self._manager._complete([request])


def _paint(buffer: FrameBuffer, config: StreamConfiguration, sequence: int) -> None:
    """A picture that moves every frame (a diagonal ramp sliding right), in the buffer."""
    plane = buffer.planes[0]
    w, h, stride = config.size.width, config.size.height, config.stride
    if str(config.pixel_format) != "YUV420":
        return  # raw and RGB streams keep whatever the buffer holds: camgate doesn't use them
    access = mmap.PROT_READ | mmap.PROT_WRITE
    with mmap.mmap(plane.fd, plane.length, mmap.MAP_SHARED, access) as memory:
        frame = np.frombuffer(memory, dtype=np.uint8)
        y = frame[: stride * h].reshape(h, stride)
        ramp = (np.arange(w)[None, :] + np.arange(h)[:, None] + 4 * sequence) & 0xFF
        y[:, :w] = ramp
        chroma = frame[stride * h :].reshape(h, stride // 2)  # U rows, then V rows
        chroma[: h // 2, : w // 2] = 96 + (sequence % 64)
        chroma[h // 2 :, : w // 2] = 160 - (sequence % 64)
        del y, chroma, frame


class CameraManager:
    _instance: CameraManager | None = None
    _instance_lock = threading.Lock()
    version = "v0.5.0+rpt-simulated"

    def __init__(self) -> None:
        self.event_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._ready: list[Request] = []
        self._lock = threading.Lock()
        self._cameras: dict[int, Camera] = {}

    @staticmethod
    def singleton() -> CameraManager:
        with CameraManager._instance_lock:
            if CameraManager._instance is None:
                CameraManager._instance = CameraManager()
            return CameraManager._instance

    @property
    def cameras(self) -> list[Camera]:
        for index in range(RIG.cameras):
            self._cameras.setdefault(index, Camera(self, index))
        return [self._cameras[i] for i in range(RIG.cameras)]

    def get(self, id: str) -> Camera | None:
        return next((c for c in self.cameras if c.id == id), None)

    def find(self, id: str) -> Camera | None:
        return self.get(id)

    def get_ready_requests(self) -> list[Request]:
        with contextlib.suppress(BlockingIOError):  # nothing new since the last call
            os.eventfd_read(self.event_fd)
        with self._lock:
            ready, self._ready = self._ready, []
        return ready

    def _complete(self, requests: list[Request]) -> None:
        if not requests:
            return
        with self._lock:
            self._ready += requests
        os.eventfd_write(self.event_fd, 1)

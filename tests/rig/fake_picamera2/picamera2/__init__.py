"""Stand-in for picamera2.Picamera2 (see ../README.md).

Behaves like the real one where camgate can tell: opening a camera that isn't there raises
IndexError, a busy one RuntimeError("Failed to acquire camera: Device or resource busy");
a configuration may have a "lores" stream (YUV420, no larger than "main", as on a Pi 3/4);
start_encoder(encoder, output, name=...) adds an encoder on the "main" or "lores" stream
and stop_encoder(encoder) removes it, while the camera runs (start()/stop());
start_recording()/stop_recording() do both, as picamera2's do. The camera thread feeds each
running encoder the sensor's picture at its stream's size; the encoders (../encoders) make
real H.264 with libx264 and call each output's outputframe(frame, keyframe, timestamp_us)
(SPS/PPS repeated before every IDR with repeat=True; force_key_frame() makes the next frame
an IDR). Tests steer it through `FAKE` (how many cameras, busy, unplugged) and read what
happened from it.
"""

import threading
import time
from dataclasses import dataclass, field

import av
import libcamera


@dataclass
class FakeState:
    cameras: int = 1
    busy: bool = False
    unplugged: threading.Event = field(default_factory=threading.Event)
    opened: list = field(default_factory=list)  # every Picamera2 made
    encoders: list = field(default_factory=list)  # every encoder started
    recordings: int = 0  # times a camera started running (start())
    stops: int = 0  # times a running camera stopped (stop())
    encoder_stops: int = 0  # stop_encoder() calls that stopped an encoder
    frames: int = 0
    keyframes: int = 0
    forced_keyframes: int = 0  # keyframes made because force_key_frame() asked
    threads: list = field(default_factory=list)

    def reset(self):
        self.__init__()


FAKE = FakeState()


def _make_initial_stream_config(stream_config, update):
    # As picamera2's: None stays None (no such stream), else the defaults updated.
    if update is None:
        return None
    config = stream_config.copy()
    config.update(update)
    return config


class Picamera2:
    @staticmethod
    def global_camera_info():
        return [
            {"Model": "imx708", "Location": 2, "Rotation": 0, "Id": f"/base/soc/i2c0mux/i2c@1/imx708@1a{n}", "Num": n}
            for n in range(FAKE.cameras)
        ]

    def __init__(self, camera_num=0, verbose_console=None, tuning=None, allocator=None):
        if camera_num >= FAKE.cameras:
            raise IndexError("list index out of range")
        if FAKE.busy:
            raise RuntimeError("Failed to acquire camera: Device or resource busy")
        self.camera_num = camera_num
        self.camera_config = None
        self.encode_stream_name = "main"
        self.started = False
        self._encoders = set()
        self.lock = threading.Lock()
        self._thread = None
        self._stop = threading.Event()
        self.is_open = True
        FAKE.opened.append(self)

    def create_video_configuration(
        self,
        main={},
        lores=None,
        raw={},
        transform=libcamera.Transform(),
        colour_space=None,
        buffer_count=6,
        controls={},
        display="main",
        encode="main",
        queue=True,
        sensor={},
        use_case="video",
    ):
        if not self.is_open:
            raise RuntimeError("Camera not opened")
        main = _make_initial_stream_config({"format": "XBGR8888", "size": (1280, 720), "preserve_ar": True}, main)
        lores = _make_initial_stream_config({"format": "YUV420", "size": main["size"], "preserve_ar": False}, lores)
        return {
            "use_case": use_case,
            "transform": transform,
            "buffer_count": buffer_count,
            "main": main,
            "lores": lores,
            "raw": raw,
            "controls": {"FrameRate": 30, **controls},
            "display": display,
            "encode": encode,
        }

    def configure(self, camera_config=None):
        # The checks of picamera2's check_camera_config() a video configuration can fail.
        for name in ("main", "lores"):
            stream = camera_config.get(name)
            if stream is None:
                continue
            width, height = stream["size"]
            if width % 2 or height % 2:
                raise RuntimeError("width and height should be even")
        lores = camera_config.get("lores")
        if lores is not None:
            main_w, main_h = camera_config["main"]["size"]
            lores_w, lores_h = lores["size"]
            if lores_w > main_w or lores_h > main_h:
                raise RuntimeError("lores stream dimensions may not exceed main stream")
            if lores["format"] not in ("YUV420", "YVU420", "NV12", "NV21"):
                raise RuntimeError("lores stream must be YUV")  # a Pi 3/4's ISP
        self.camera_config = camera_config

    def camera_configuration(self):
        return self.camera_config

    def start(self, config=None, show_preview=False):
        if config is not None:
            self.configure(config)
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        if self.started:
            return
        self.started = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._sensor, name="fake-picamera2-camera", daemon=True)
        FAKE.recordings += 1
        FAKE.threads.append(self._thread)
        self._thread.start()

    def stop(self):
        if not self.started:
            return
        self.started = False
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        FAKE.stops += 1

    def start_encoder(self, encoder=None, output=None, pts=None, quality=None, name=None):
        _encoder = encoder
        if _encoder is None:
            if len(self._encoders) > 1:
                raise RuntimeError("Multiple possible encoders, need to pass encoder")
            if len(self._encoders) == 1:
                _encoder = list(self._encoders)[0]
        if _encoder is None:
            raise RuntimeError("No encoder specified")
        if output is not None:
            _encoder.output = output
        streams = self.camera_configuration()
        if not streams:
            raise RuntimeError("Camera has not been configured")
        if name is None:
            name = self.encode_stream_name
        if streams.get(name, None) is None:
            raise RuntimeError(f"Encode stream {name} was not defined")
        _encoder.name = name
        _encoder.width, _encoder.height = streams[name]["size"]
        _encoder.format = streams[name]["format"]
        if _encoder.framerate is None:
            _encoder.framerate = streams["controls"]["FrameRate"]
        _encoder.start(quality=quality)
        with self.lock:
            self._encoders.add(_encoder)
        FAKE.encoders.append(_encoder)

    def stop_encoder(self, encoders=None):
        remove = []
        if encoders is None:
            remove = list(self._encoders)
        elif isinstance(encoders, (list, set)):
            remove = list(encoders)
        else:
            remove = [encoders]
        for encoder in remove:
            encoder.stop()
        with self.lock:
            for encoder in remove:
                self._encoders.remove(encoder)
        FAKE.encoder_stops += len(remove)  # counted once they are gone

    @property
    def encoders(self):
        return self._encoders

    def start_recording(self, encoder, output, pts=None, config=None, quality=None, name=None):
        if not self.camera_config and config is None:
            config = self.create_video_configuration()
        if config is not None:
            self.configure(config)
        self.start_encoder(encoder, output, pts=pts, quality=quality, name=name)
        self.start()

    def stop_recording(self):
        self.stop()
        self.stop_encoder()

    def close(self):
        self.stop()
        self.is_open = False

    # -- the sensor and ISP, in one thread: each encoder gets its stream's picture -------------

    def _sensor(self):
        width, height = self.camera_config["main"]["size"]
        fps = int(self.camera_config["controls"]["FrameRate"])
        pattern = av.open(f"testsrc2=size={width}x{height}:rate={fps}", format="lavfi")
        frames = pattern.decode(video=0)
        start = time.monotonic()
        try:
            for n, picture in enumerate(frames):
                if self._stop.is_set():
                    break
                due = start + n / fps
                delay = due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                if FAKE.unplugged.is_set():
                    continue  # the sensor is gone: nothing more comes out
                with self.lock:
                    encoders = list(self._encoders)
                for encoder in encoders:
                    size = self.camera_config[encoder.name]["size"]
                    frame = picture.reformat(width=size[0], height=size[1], format="yuv420p")
                    encoder._encode_picture(frame, int(due * 1_000_000))
        finally:
            pattern.close()

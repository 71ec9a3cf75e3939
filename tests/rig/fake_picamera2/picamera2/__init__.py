"""Stand-in for picamera2.Picamera2 (see ../README.md).

Behaves like the real one where camgate can tell: opening a camera that isn't there raises
IndexError, a busy one RuntimeError("Failed to acquire camera: Device or resource busy"),
start_recording() starts the encoder thread that calls each output's outputframe(frame,
keyframe, timestamp_us) with real H.264 (libx264 via PyAV: SPS/PPS repeated before every
IDR when the encoder asks for repeat=True), and force_key_frame() makes the next frame an
IDR. Tests steer it through `FAKE` (how many cameras, busy, unplugged) and read what
happened from it.
"""

import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction

import av
import libcamera
from av.video.frame import PictureType


@dataclass
class FakeState:
    cameras: int = 1
    busy: bool = False
    unplugged: threading.Event = field(default_factory=threading.Event)
    opened: list = field(default_factory=list)  # every Picamera2 made
    encoders: list = field(default_factory=list)  # every encoder started
    recordings: int = 0  # start_recording calls
    stops: int = 0  # stop_recording calls
    frames: int = 0
    keyframes: int = 0
    forced_keyframes: int = 0  # keyframes made because force_key_frame() asked
    threads: list = field(default_factory=list)

    def reset(self):
        self.__init__()


FAKE = FakeState()


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
        self.started = False
        self._encoder = None
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
        stream = {"format": "XBGR8888", "size": (1280, 720), "preserve_ar": True, **main}
        return {
            "use_case": use_case,
            "transform": transform,
            "buffer_count": buffer_count,
            "main": stream,
            "lores": lores,
            "raw": raw,
            "controls": {"FrameRate": 30, **controls},
            "display": display,
            "encode": encode,
        }

    def configure(self, camera_config=None):
        self.camera_config = camera_config

    def start(self, config=None, show_preview=False):
        self.started = True

    def stop(self):
        self.started = False

    def start_recording(self, encoder, output, pts=None, config=None, quality=None, name=None):
        if self.camera_config is None:
            self.configure(config or self.create_video_configuration())
        encoder.output = output
        for out in encoder.output:
            out.start()
        width, height = self.camera_config["main"]["size"]
        encoder.width, encoder.height = width, height
        encoder.framerate = encoder.framerate or self.camera_config["controls"]["FrameRate"]
        self._encoder = encoder
        self._stop.clear()
        self._thread = threading.Thread(target=self._encode, name="fake-picamera2-encoder", daemon=True)
        FAKE.recordings += 1
        FAKE.encoders.append(encoder)
        FAKE.threads.append(self._thread)
        self._thread.start()
        self.start()

    def stop_recording(self):
        self.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._encoder is not None:
            for out in self._encoder.output:
                out.stop()
            self._encoder = None
            FAKE.stops += 1

    def close(self):
        self.is_open = False

    # -- the sensor and hardware encoder, in one thread ------------------------------------

    def _encode(self):
        encoder = self._encoder
        fps = int(encoder.framerate)
        width, height = encoder.width, encoder.height
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.time_base = Fraction(1, 1_000_000)  # microseconds, like the sensor timestamps
        ctx.framerate = Fraction(fps, 1)
        ctx.bit_rate = encoder.bitrate or 3_000_000
        x264 = [f"keyint={encoder.iperiod or 60}", "min-keyint=1", "scenecut=0", "bframes=0"]
        if encoder.repeat:
            x264.append("repeat-headers=1")
        ctx.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": {"baseline": "baseline", "main": "main", "high": "high"}.get(
                encoder.profile or "main", "main"
            ),
            "x264-params": ":".join(x264),
            "forced-idr": "1",  # a forced keyframe is an IDR, as on the Pi's encoder
            "threads": "1",
        }
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
                frame = picture.reformat(format="yuv420p")
                frame.pts = int(due * 1_000_000)
                forced = encoder._key_frames_requested > encoder._key_frames_generated
                if forced:
                    encoder._key_frames_generated = encoder._key_frames_requested
                # The test pattern's frames come out of a decoder marked I: left so, every
                # frame would be encoded as a keyframe.
                frame.pict_type = PictureType.I if forced else PictureType.NONE
                for packet in ctx.encode(frame):
                    FAKE.frames += 1
                    FAKE.keyframes += packet.is_keyframe
                    FAKE.forced_keyframes += forced and packet.is_keyframe
                    encoder.outputframe(bytes(packet), packet.is_keyframe, packet.pts)
        finally:
            pattern.close()

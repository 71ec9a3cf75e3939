"""picamera2.encoders: H264Encoder with the hardware encoder's constructor and
force_key_frame(), Encoder's start()/stop()/outputframe(); libx264 stands in for the
Pi 3/4's V4L2 encoder (one instance per encoder, as each opens /dev/video11 on a Pi)."""

import threading
from fractions import Fraction

import av
from av.video.frame import PictureType


class Quality:
    VERY_LOW = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    VERY_HIGH = 4


class Encoder:
    def __init__(self):
        self._output = []
        self._output_lock = threading.Lock()
        self._lock = threading.Lock()
        self._running = False
        self._name = None
        self.width = self.height = None
        self.format = None
        self.framerate = None
        self.firsttimestamp = None

    @property
    def running(self):
        return self._running

    @property
    def output(self):
        return self._output

    @output.setter
    def output(self, value):
        self._output = value if isinstance(value, list) else [value]

    @property
    def name(self):
        return self._name

    @name.setter
    def name(self, value):
        if not isinstance(value, str):
            raise RuntimeError("Name must be string")
        self._name = value

    def start(self, quality=None):
        with self._lock:
            if self._running:
                raise RuntimeError("Encoder already running")
            self._running = True
            self.firsttimestamp = None
            for out in self._output:
                out.start()
            self._start()

    def _start(self):
        pass

    def stop(self):
        with self._lock:
            if not self._running:
                raise RuntimeError("Encoder already stopped")
            self._running = False
            self._stop()
            for out in self._output:
                out.stop()

    def _stop(self):
        pass

    def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
        with self._output_lock:
            for out in self._output:
                out.outputframe(frame, keyframe, timestamp, packet, audio)

    def _encode_picture(self, frame, sensor_us):
        """The fake camera's hand-over (picamera2's is encode(stream, request))."""
        with self._lock:
            if not self._running:
                return
            if self.firsttimestamp is None:
                self.firsttimestamp = sensor_us
            self._encode(frame, sensor_us - self.firsttimestamp)

    def _encode(self, frame, timestamp_us):
        pass


class H264Encoder(Encoder):
    def __init__(
        self, bitrate=None, repeat=True, iperiod=None, framerate=None, enable_sps_framerate=False, qp=None, profile=None
    ):
        super().__init__()
        self.bitrate = bitrate
        self.repeat = repeat
        self.iperiod = iperiod
        self.framerate = framerate
        self._enable_framerate = enable_sps_framerate
        self.qp = qp
        self.profile = profile
        self._key_frames_requested = 0
        self._key_frames_generated = 0
        self._context = None
        self.frames = 0  # encoded by this encoder (the fake's own count)

    def force_key_frame(self):
        """Force a key frame to be encoded in the video stream as soon as possible."""
        self._key_frames_requested += 1

    def _start(self):
        fps = int(self.framerate)
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = self.width, self.height, "yuv420p"
        ctx.time_base = Fraction(1, 1_000_000)  # microseconds, like the sensor timestamps
        ctx.framerate = Fraction(fps, 1)
        ctx.bit_rate = self.bitrate or 3_000_000
        x264 = [f"keyint={self.iperiod or 60}", "min-keyint=1", "scenecut=0", "bframes=0"]
        if self.repeat:
            x264.append("repeat-headers=1")
        ctx.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": {"baseline": "baseline", "main": "main", "high": "high"}.get(self.profile or "main", "main"),
            "x264-params": ":".join(x264),
            "forced-idr": "1",  # a forced keyframe is an IDR, as on the Pi's encoder
            "threads": "1",
        }
        self._context = ctx

    def _stop(self):
        self._context = None

    def _encode(self, frame, timestamp_us):
        from picamera2 import FAKE

        frame.pts = timestamp_us
        forced = self._key_frames_requested > self._key_frames_generated
        if forced:
            self._key_frames_generated = self._key_frames_requested
        # The test pattern's frames come out of a decoder marked I: left so, every frame
        # would be encoded as a keyframe.
        frame.pict_type = PictureType.I if forced else PictureType.NONE
        for packet in self._context.encode(frame):
            self.frames += 1
            FAKE.frames += 1
            FAKE.keyframes += packet.is_keyframe
            FAKE.forced_keyframes += forced and packet.is_keyframe
            self.outputframe(bytes(packet), packet.is_keyframe, packet.pts)

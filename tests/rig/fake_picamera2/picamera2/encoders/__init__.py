"""picamera2.encoders: H264Encoder with the hardware encoder's constructor and
force_key_frame(); the fake camera does the encoding (see picamera2/__init__.py)."""

import threading


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
        self.width = self.height = None
        self.framerate = None

    @property
    def output(self):
        return self._output

    @output.setter
    def output(self, value):
        self._output = value if isinstance(value, list) else [value]

    def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
        with self._output_lock:
            for out in self._output:
                out.outputframe(frame, keyframe, timestamp, packet, audio)


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

    def force_key_frame(self):
        """Force a key frame to be encoded in the video stream as soon as possible."""
        self._key_frames_requested += 1

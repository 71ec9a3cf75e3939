"""picamera2.outputs: the Output base class (same signatures as picamera2 0.3.x)."""


class Output:
    def __init__(self, pts=None):
        self.recording = False
        self.ptsoutput = pts
        self.needs_pacing = False
        self.needs_add_stream = False

    def start(self):
        self.recording = True

    def stop(self):
        self.recording = False

    def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
        """Called by the encoder's thread for every encoded frame (timestamp in us)."""

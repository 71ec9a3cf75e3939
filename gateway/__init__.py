"""camgate: a camera gateway that hands camera H.264 to browsers over WebRTC untouched."""

__version__ = "0.2.0"

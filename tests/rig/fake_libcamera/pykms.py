"""Stand-in for pykms (kms++'s binding, for picamera2's DRM preview window): it is not on
PyPI and needs a display. picamera2 imports it at start-up; camgate never shows a preview,
so only the import-time names exist and opening a display fails as on a headless Pi."""

from enum import Enum


class PixelFormat(Enum):
    RGB888 = "RG24"
    BGR888 = "BG24"
    XRGB8888 = "XR24"
    XBGR8888 = "XB24"
    ABGR8888 = "AB24"
    YUYV = "YUYV"
    YVYU = "YVYU"
    YUV420 = "YU12"
    YVU420 = "YV12"
    NV12 = "NV12"


class PlaneType(Enum):
    Overlay = 0
    Primary = 1
    Cursor = 2


class Card:
    def __init__(self, path: str = "/dev/dri/card0") -> None:
        raise OSError(f"no display: cannot open {path}")

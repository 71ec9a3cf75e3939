"""Stand-in for libcamera's Python binding (the C++ library only exists on a Pi).

Like the real package, everything lives in `_libcamera` and is re-exported here. It covers
what picamera2 touches to open, configure, start and stop a camera and to receive frames;
see _libcamera.py for the simulated sensor and `RIG` for how tests steer it.
"""

from . import _libcamera
from ._libcamera import *  # noqa: F403
from ._libcamera import RIG, controls, properties

__all__ = [*_libcamera.__all__, "RIG", "controls", "properties"]

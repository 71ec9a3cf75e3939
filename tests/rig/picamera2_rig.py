"""The REAL picamera2 (installed from PyPI by the test extras) on this machine, as on a Pi.

Only what cannot exist here is replaced:
- libcamera, the C++ library and its binding: tests/rig/fake_libcamera (a simulated sensor
  behind libcamera's Python API);
- the Pi model picamera2 detects at import by asking /dev/video* for the ISP's name
  ("pispbe" on a Pi 5, "bcm2835-isp" on a Pi 3/4): we answer for it;
- the kernel's DMA heap (/dev/dma_heap/*) and its cache-sync ioctl that picamera2's
  DmaAllocator uses for frame buffers: memfd buffers, mapped the same way.

Everything else, the encoders included, is picamera2's own code. `load()` imports it with
those three in place; `unload()` forgets it so the next test (or the Pi 3/4 stand-in in
tests/rig/fake_picamera2) starts clean.
"""

from __future__ import annotations

import importlib
import importlib.util
import mmap
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.rig import prereq

FAKE_LIBCAMERA_DIR = Path(__file__).parent / "fake_libcamera"
FAKE_PICAMERA2_DIR = Path(__file__).parent / "fake_picamera2"
PLATFORMS = ("pisp", "vc4")  # Pi 5; Pi 3/4 (and Zero 2 W)


def unload() -> None:
    for name in [n for n in sys.modules if n.split(".")[0] in ("picamera2", "libcamera")]:
        del sys.modules[name]
    for path in (str(FAKE_LIBCAMERA_DIR), str(FAKE_PICAMERA2_DIR)):
        while path in sys.path:
            sys.path.remove(path)


def load(platform: str = "pisp") -> ModuleType:
    """Import the real picamera2 as on a Pi 5 ("pisp") or a Pi 3/4 ("vc4")."""
    if platform not in PLATFORMS:
        raise ValueError(platform)
    unload()
    spec = importlib.util.find_spec("picamera2")
    if spec is None or spec.submodule_search_locations is None:
        prereq.missing("picamera2 is not installed in the venv")
    sys.path.insert(0, str(FAKE_LIBCAMERA_DIR))
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    _preload_platform(package_dir / "platform.py", platform)
    picamera2 = importlib.import_module("picamera2")
    _use_memfd_buffers(picamera2)
    return picamera2


@contextmanager
def loaded(platform: str = "pisp") -> Iterator[ModuleType]:
    picamera2 = load(platform)
    libcamera = importlib.import_module("libcamera")
    libcamera.RIG.reset()
    try:
        yield picamera2
    finally:
        libcamera.RIG.unplugged.clear()
        for camera in list(picamera2.Picamera2._cm.cameras.values()):
            camera.close()  # a test that failed half-way must not leave a sensor running
        unload()


@pytest.fixture
def real_picamera2() -> Iterator[ModuleType]:
    """The real picamera2 on a simulated Pi 5; libcamera.RIG steers the camera."""
    with loaded("pisp") as picamera2:
        yield picamera2


def _preload_platform(path: Path, platform: str) -> None:
    """Run picamera2/platform.py (its /dev/video* probe finds nothing here), then set the
    answer a Pi would have given, before picamera2's __init__ imports it."""
    spec = importlib.util.spec_from_file_location("picamera2.platform", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module._platform = module.Platform.PISP if platform == "pisp" else module.Platform.VC4
    sys.modules["picamera2.platform"] = module


def _use_memfd_buffers(picamera2: ModuleType) -> None:
    dmaallocator = importlib.import_module("picamera2.allocators.dmaallocator")
    allocators = importlib.import_module("picamera2.allocators")
    memfd_allocator = _memfd_allocator_class(dmaallocator)
    # Picamera2 makes its default allocator (and a fresh one in close()) by this name.
    picamera2.picamera2.DmaAllocator = memfd_allocator
    allocators.DmaAllocator = memfd_allocator


def _memfd_allocator_class(dmaallocator: ModuleType) -> type:
    base: Any = dmaallocator.DmaAllocator
    unique_fd: Any = importlib.import_module("picamera2.dma_heap").UniqueFD

    class MemfdHeap:
        """DmaHeap's API: alloc(name, size) -> UniqueFD, close()."""

        isValid = True

        def alloc(self, name: str, size: int) -> Any:
            fd = os.memfd_create(name, os.MFD_CLOEXEC)
            os.ftruncate(fd, size)
            return unique_fd(fd)

        def close(self) -> None:
            pass

    class MemfdSync:
        """DmaSync without the DMA_BUF_IOCTL_SYNC cache maintenance (memfd has no cache)."""

        def __init__(self, allocator: Any, fb: Any, write: bool) -> None:
            self.allocator, self.fb = allocator, fb

        def __enter__(self) -> mmap.mmap:
            return self.get_buffer()

        def __exit__(self, *exc: object) -> None:
            pass

        def get_buffer(self) -> mmap.mmap:
            memory = self.allocator.mapped_buffers.get(self.fb)
            if memory is None:
                raise RuntimeError("failed to find buffer in DmaSync")
            return memory

    class MemfdDmaAllocator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__mro__[1].__init__(self)  # Allocator.__init__: skip opening /dev/dma_heap
            self.dmaHeap = MemfdHeap()
            self.mapped_buffers = {}
            self.mapped_buffers_used = {}
            self.frame_buffers = {}
            self.open_fds = []
            self.libcamera_fds = []
            self.sync = MemfdSync

    return MemfdDmaAllocator

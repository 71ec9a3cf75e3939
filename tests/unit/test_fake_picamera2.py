"""The tests' Pi 3/4 picamera2 stand-in (tests/rig/fake_picamera2: the hardware V4L2
encoder can't run here) must match the real picamera2's API: every method camgate calls,
with the same parameters and defaults, read from the picamera2 the test extras install
(imported as on a Pi 3/4 by tests/rig/picamera2_rig.py)."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from tests.rig import picamera2_rig

# (module in the real package, class, method): everything camgate or the fake's callers use.
CHECKED = [
    ("picamera2.picamera2", "Picamera2", "__init__"),
    ("picamera2.picamera2", "Picamera2", "global_camera_info"),
    ("picamera2.picamera2", "Picamera2", "create_video_configuration"),
    ("picamera2.picamera2", "Picamera2", "configure"),
    ("picamera2.picamera2", "Picamera2", "start"),
    ("picamera2.picamera2", "Picamera2", "stop"),
    ("picamera2.picamera2", "Picamera2", "start_recording"),
    ("picamera2.picamera2", "Picamera2", "stop_recording"),
    # The sub stream: a second encoder on the "lores" output of the running camera.
    ("picamera2.picamera2", "Picamera2", "start_encoder"),
    ("picamera2.picamera2", "Picamera2", "stop_encoder"),
    ("picamera2.picamera2", "Picamera2", "camera_configuration"),
    ("picamera2.picamera2", "Picamera2", "close"),
    ("picamera2.encoders.h264_encoder", "H264Encoder", "__init__"),
    ("picamera2.encoders.h264_encoder", "H264Encoder", "force_key_frame"),
    ("picamera2.encoders.encoder", "Encoder", "outputframe"),
    ("picamera2.encoders.encoder", "Encoder", "start"),
    ("picamera2.encoders.encoder", "Encoder", "stop"),
    ("picamera2.outputs.output", "Output", "__init__"),
    ("picamera2.outputs.output", "Output", "start"),
    ("picamera2.outputs.output", "Output", "stop"),
    ("picamera2.outputs.output", "Output", "outputframe"),
]
FAKE_MODULE = {"Picamera2": "picamera2", "H264Encoder": "picamera2.encoders"}
FAKE_MODULE |= {"Encoder": "picamera2.encoders", "Output": "picamera2.outputs"}
Signature = list[tuple[str, str | None]]


def parameters(function: Any) -> Signature:
    """(name, repr of the default or None) per parameter, without self."""
    found = []
    for name, p in inspect.signature(function).parameters.items():
        if name == "self":
            continue
        default = None if p.default is inspect.Parameter.empty else repr(p.default)
        if type(p.default).__module__.startswith("libcamera"):  # e.g. Transform(): by type
            default = f"libcamera.{type(p.default).__name__}()"
        found.append((name, default))
    return found


@pytest.fixture(scope="module")
def real() -> Iterator[dict[tuple[str, str, str], Signature]]:
    with picamera2_rig.loaded("vc4"):
        signatures = {}
        for module, cls, method in CHECKED:
            klass = getattr(sys.modules[module], cls)
            signatures[(module, cls, method)] = parameters(getattr(klass, method))
        yield signatures


@pytest.fixture(scope="module")
def fake(real: object) -> Iterator[dict[str, ModuleType]]:
    picamera2_rig.unload()
    sys.path[:0] = [str(picamera2_rig.FAKE_PICAMERA2_DIR), str(picamera2_rig.FAKE_LIBCAMERA_DIR)]
    try:
        import picamera2
        import picamera2.encoders
        import picamera2.outputs

        assert "fake_picamera2" in picamera2.__file__
        yield {cls: sys.modules[name] for cls, name in FAKE_MODULE.items()}
    finally:
        picamera2_rig.unload()


@pytest.mark.parametrize(("module", "cls", "method"), CHECKED)
def test_the_stand_in_matches_the_real_api(
    real: dict[tuple[str, str, str], Signature],
    fake: dict[str, ModuleType],
    module: str,
    cls: str,
    method: str,
) -> None:
    theirs = real[(module, cls, method)]
    mine = parameters(getattr(getattr(fake[cls], cls), method))
    assert [n for n, _ in mine] == [n for n, _ in theirs], f"{cls}.{method} parameters"
    for (name, their_default), (_, my_default) in zip(theirs, mine, strict=True):
        if their_default is None:
            assert my_default is None, f"{cls}.{method}({name}) has no default in picamera2"
        else:
            assert my_default == their_default, f"{cls}.{method}({name})"


def _lores_errors(picamera2: ModuleType) -> list[str]:
    """What configure() says about low-resolution outputs a Pi 3/4 can't make."""
    camera = picamera2.Picamera2(0)
    said = []
    try:
        for lores in ({"size": (1920, 1080)}, {"size": (640, 360), "format": "XBGR8888"}):
            config = camera.create_video_configuration(
                main={"size": (1280, 720), "format": "YUV420"}, lores=lores
            )
            try:
                camera.configure(config)
                said.append("accepted")
            except RuntimeError as exc:
                said.append(str(exc))
        config = camera.create_video_configuration(lores={"size": (640, 360)})
        said.append(repr(config["lores"]))
    finally:
        camera.close()
    return said


def test_the_stand_in_refuses_lores_outputs_as_the_real_one_does() -> None:
    with picamera2_rig.loaded("vc4") as real_module:
        theirs = _lores_errors(real_module)
    sys.path[:0] = [str(picamera2_rig.FAKE_PICAMERA2_DIR), str(picamera2_rig.FAKE_LIBCAMERA_DIR)]
    try:
        import picamera2

        mine = _lores_errors(picamera2)
    finally:
        picamera2_rig.unload()
    assert theirs[:2] == [
        "lores stream dimensions may not exceed main stream",
        "lores stream must be YUV",
    ]
    assert mine == theirs

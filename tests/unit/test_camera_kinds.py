"""Camera kinds come from one registry: the config's camera keys and checks, and how the
gateway builds, describes and names a camera, all follow what a source module registers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.app import camera_description, camera_model, source_factory
from gateway.config import ConfigError, parse_config
from gateway.onvif.session import OnvifSession
from gateway.sources.demo import DemoSource
from gateway.sources.onvif import OnvifSource
from gateway.sources.picamera import PicameraSource
from gateway.sources.registry import CameraKind, kind_named, kinds, register
from gateway.sources.rtsp import RtspSource

CAMERAS = """
cameras:
  - {name: front, source: "rtsp://admin:s3cret@192.0.2.10:8554/main", transport: udp}
  - {name: yard, source: "rtsp://192.0.2.11/h264", onvif: {host: 192.0.2.11}}
  - name: porch
    onvif: {host: 192.0.2.12, port: 8000, profile: Sub, username: u, password: hunter2}
  - {name: pi, picamera: {camera: 1, width: 640, height: 480}}
  - {name: demo, source: demo, demo: {width: 320, height: 240}}
"""


def test_the_registry_lists_every_built_in_kind() -> None:
    assert {kind.name for kind in kinds()} == {"rtsp", "onvif", "picamera", "demo"}
    assert {k.name for k in kinds() if k.settings is not None} == {"onvif", "picamera", "demo"}


def test_each_kind_builds_describes_and_names_its_camera_from_its_config() -> None:
    config = parse_config(CAMERAS)
    front, yard, porch, pi, demo = config.cameras
    assert [c.kind for c in config.cameras] == ["rtsp", "rtsp", "onvif", "picamera", "demo"]

    rtsp = source_factory(front)()
    assert isinstance(rtsp, RtspSource) and rtsp.transport == "udp"
    assert "s3cret" not in camera_description(front)
    assert camera_description(front) == rtsp.description == "rtsp://192.0.2.10:8554/main"
    assert camera_model(front) == "RTSP camera" and camera_model(yard) == "ONVIF camera"
    assert isinstance(source_factory(yard)(), RtspSource)  # ONVIF for PTZ only

    assert porch.onvif_settings is not None
    session = OnvifSession(porch.onvif_settings, porch.name)
    onvif = source_factory(porch, session)()
    assert isinstance(onvif, OnvifSource) and onvif.session is session
    assert camera_description(porch) == "onvif://192.0.2.12:8000 (Sub)"
    assert camera_model(porch) == "ONVIF camera" and "hunter2" not in repr(config)

    picamera = source_factory(pi)()
    assert isinstance(picamera, PicameraSource) and picamera.settings.camera == 1
    assert (picamera.settings.width, picamera.settings.height) == (640, 480)
    assert camera_description(pi) == "picamera 1" and camera_model(pi) == "Raspberry Pi camera"

    demo_source = source_factory(demo)()
    assert isinstance(demo_source, DemoSource) and demo_source.settings.width == 320
    assert camera_description(demo) == "demo" and camera_model(demo) == "Demo camera"


def test_a_kind_without_a_block_of_its_own_has_none() -> None:
    config = parse_config("cameras: [{name: a, source: 'rtsp://h/x'}]")
    with pytest.raises(ConfigError, match=r"cameras\[0\]\.rtsp: unknown key"):
        parse_config("cameras: [{name: a, source: 'rtsp://h/x', rtsp: {}}]")
    assert config.cameras[0].onvif_settings is None


def test_a_kind_is_registered_once() -> None:
    demo = kind_named("demo")
    assert register(demo) is demo  # importing a module again is harmless
    twin = CameraKind(name="demo", model="Another", build=demo.build, describe=demo.describe)
    with pytest.raises(ValueError, match="registered twice"):
        register(twin)


TESTCARD = """
from gateway.config_model import Section
from gateway.sources.registry import CameraKind, SourceSetup, register


class TestcardSettings(Section, frozen=True):
    colour: str = "grey"


class TestcardSource:
    sdp_parameter_sets: list[bytes] = []

    def __init__(self, colour: str) -> None:
        self.colour = colour
        self.description = f"test card ({colour})"


def build(setup: SourceSetup) -> TestcardSource:
    return TestcardSource(TESTCARD.settings_of(setup.camera).colour)


TESTCARD = register(
    CameraKind(
        name="testcard",
        model="Test card",
        settings=TestcardSettings,
        build=build,
        describe=lambda camera: "test card",
        takes_source=lambda source: source == "testcard",
        source_hint="'testcard'",
    )
)
"""

PROBE = """
import json, sys
import gateway.sources
gateway.sources.__path__.append(sys.argv[1])  # as if the module were in gateway/sources/
from gateway.app import camera_description, camera_model, source_factory
from gateway.config import ConfigError, parse_config

camera = parse_config(
    "cameras: [{name: card, source: testcard, testcard: {colour: red}}, {name: d, source: demo}]"
).cameras[0]
source = source_factory(camera)()
errors = []
for text in ("cameras: [{name: x, source: nope}]", "cameras: [{name: x, testcard: {size: 1}}]",
             "cameras: [{name: x, source: demo, testcard: {}}]"):
    try:
        parse_config(text)
    except ConfigError as exc:
        errors.append(str(exc))
print(json.dumps({
    "kind": camera.kind, "colour": source.colour, "class": type(source).__name__,
    "description": camera_description(camera), "model": camera_model(camera), "errors": errors,
}))
"""


def test_a_new_kind_is_one_module_that_registers_it(tmp_path: Path) -> None:
    # A fresh interpreter: the new kind must not stay registered for the other tests.
    (tmp_path / "testcard.py").write_text(textwrap.dedent(TESTCARD))
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen = json.loads(result.stdout)
    assert (seen["kind"], seen["class"], seen["colour"]) == ("testcard", "TestcardSource", "red")
    assert (seen["description"], seen["model"]) == ("test card", "Test card")
    wrong_source, unknown_key, foreign_block = seen["errors"]
    assert wrong_source.startswith("cameras[0].source: must be ") and "'testcard'" in wrong_source
    assert unknown_key.startswith("cameras[0].testcard.size: unknown key (allowed: colour)")
    assert foreign_block.startswith("cameras[0].testcard: the demo camera cannot have a")

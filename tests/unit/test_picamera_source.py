"""The Pi camera source's pieces that need no camera: frames to AccessUnits, the install
hint without picamera2, Pi camera detection, and its config."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gateway.config import ConfigError, parse_config
from gateway.media.accessunit import VIDEO_CLOCK_RATE
from gateway.sources.base import SourceError
from gateway.sources.picamera import import_picamera2, pi_camera_present, to_access_unit
from tests.rig import picamera2_rig

SPS, PPS, IDR = b"\x67\x42\xc0\x1f", b"\x68\xce\x3c\x80", b"\x65\x88\x84\x21"


def test_encoder_frames_become_access_units_on_the_90khz_clock() -> None:
    frame = b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x00\x01" + PPS + b"\x00\x00\x01" + IDR
    unit = to_access_unit(frame, True, 2_000_000)
    assert unit.nals == (SPS, PPS, IDR) and unit.keyframe
    assert unit.pts == 2 * VIDEO_CLOCK_RATE
    with pytest.raises(ValueError):
        to_access_unit(b"", False, 0)


def test_without_picamera2_the_error_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # "not installed"
    with pytest.raises(SourceError) as info:
        import_picamera2()
    message = str(info.value)
    assert "sudo apt install python3-picamera2" in message
    assert "--system-site-packages" in message


def test_pi_camera_detection(tmp_path: Path, monkeypatch) -> None:
    pi = tmp_path / "model"
    pi.write_text("Raspberry Pi 4 Model B Rev 1.4\x00")
    pc = tmp_path / "pc-model"
    pc.write_text("QEMU Virtual Machine")
    assert not pi_camera_present(tmp_path / "missing")
    assert not pi_camera_present(pc)
    monkeypatch.setitem(sys.modules, "picamera2", None)
    assert not pi_camera_present(pi)  # a Pi without picamera2
    monkeypatch.delitem(sys.modules, "picamera2")
    with picamera2_rig.loaded("pisp"):  # the real picamera2 over the libcamera stand-in
        import libcamera

        assert pi_camera_present(pi)
        libcamera.RIG.cameras = 0
        assert not pi_camera_present(pi)  # a Pi with no camera module


def test_picamera_config() -> None:
    config = parse_config("cameras: [{name: pi, source: picamera}]")
    cam = config.cameras[0]
    assert cam.kind == "picamera" and cam.picamera.width == 1280 and cam.picamera.framerate == 30
    assert cam.picamera.keyframe_interval == 60 and cam.picamera.bitrate == 3_000_000
    short = parse_config(
        "cameras: [{name: pi, picamera: {camera: 1, width: 1920, height: 1080, framerate: 25,"
        " bitrate: 6000000, iperiod: 50, profile: high, hflip: true, rotation: 180}}]"
    ).cameras[0]
    assert short.kind == "picamera" and short.picamera.camera == 1
    assert (short.picamera.profile, short.picamera.keyframe_interval) == ("high", 50)
    assert short.picamera.rotation == 180 and short.picamera.hflip


@pytest.mark.parametrize(
    ("camera", "message"),
    [
        ("{name: pi, picamera: {rotation: 90}}", "0 or 180 degrees only"),
        ("{name: pi, picamera: {width: 641}}", "even"),
        ("{name: pi, picamera: {profile: extended}}", "cameras[0].picamera.profile"),
        ("{name: pi, picamera: {fps: 30}}", "cameras[0].picamera.fps: unknown key"),
        ("{name: pi, source: demo, picamera: {}}", "only for `source: picamera`"),
        ("{name: pi, source: picamera, onvif: {host: h}}", "cannot have an `onvif` block"),
    ],
)
def test_picamera_config_errors(camera: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f"cameras: [{camera}]")
    assert message in str(info.value)

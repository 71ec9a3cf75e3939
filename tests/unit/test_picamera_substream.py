"""The Pi camera's sub stream settings: its default, `substream: off`, the sizes the
Pi's low-resolution output can't make, and when a Pi 3/4's hardware encoder can't carry
both streams."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, parse_config
from gateway.sources.picamera import PicameraSettings, PicameraSubSource
from gateway.sources.registry import SourceSetup, kind_named


def settings(picamera: str) -> PicameraSettings:
    camera = parse_config(f"cameras: [{{name: pi, picamera: {picamera}}}]").cameras[0]
    result: PicameraSettings = camera.picamera
    return result


def test_default_is_640_wide_in_the_main_streams_shape_at_half_a_megabit() -> None:
    default = settings("{}")
    assert default.substream_size == (640, 360) and default.substream.bitrate == 500_000
    assert settings("{width: 1440, height: 1080}").substream_size == (640, 480)
    assert settings("{width: 1000, height: 750}").substream_size == (640, 480)
    # A main stream no larger than the default sub stream: nothing smaller to offer.
    assert settings("{width: 640, height: 480}").substream_size is None
    assert settings("{width: 320, height: 240}").substream_size is None


def test_chosen_size_and_off() -> None:
    chosen = settings("{substream: {width: 480, height: 270, bitrate: 300000}}")
    assert chosen.substream_size == (480, 270) and chosen.substream.bitrate == 300_000
    assert settings("{substream: {width: 320}}").substream_size == (320, 180)
    assert settings("{substream: off}").substream_size is None  # YAML's false
    assert settings("{substream: 'off'}").substream_size is None


@pytest.mark.parametrize(
    ("picamera", "message"),
    [
        ("{substream: {width: 1920}}", "larger than the main stream (1280x720)"),
        ("{width: 640, height: 480, substream: {width: 640, height: 720}}", "larger"),
        ("{substream: {width: 1280, height: 720}}", "is the main stream's size"),
        ("{substream: {width: 641}}", "even"),
        ("{substream: {width: 640, height: 361}}", "even"),
        ("{substream: {width: 16}}", "cameras[0].picamera.substream.width"),
        ("{substream: {fps: 15}}", "cameras[0].picamera.substream.fps: unknown key"),
        ("{substream: on}", "cameras[0].picamera.substream"),
    ],
)
def test_sizes_the_low_resolution_output_cannot_make_are_config_errors(
    picamera: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        settings(picamera)
    assert message in str(info.value)


def test_a_pi_4s_encoder_carries_both_up_to_one_1080p30s_worth() -> None:
    assert settings("{}").hardware_encoder_overload() is None  # 720p30 + 360p30
    at_25 = settings("{width: 1920, height: 1080, framerate: 25}")
    assert at_25.hardware_encoder_overload() is None
    overload = settings("{width: 1920, height: 1080}").hardware_encoder_overload()
    assert overload is not None and "1920x1080 and 640x360 at 30 fps" in overload
    off = settings("{width: 1920, height: 1080, substream: off}")
    assert off.hardware_encoder_overload() is None


def test_the_kind_builds_the_sub_source_or_none() -> None:
    kind = kind_named("picamera")
    assert kind.build_substream is not None
    on = parse_config("cameras: [{name: pi, source: picamera}]").cameras[0]
    sub = kind.build_substream(SourceSetup(on))
    assert isinstance(sub, PicameraSubSource) and sub.size == (640, 360)
    assert sub.stream == "lores" and "640x360" in sub.description
    main = kind.build(SourceSetup(on))
    assert main.device is sub.device  # one sensor, one Picamera2  # type: ignore[attr-defined]
    off = parse_config("cameras: [{name: pi, picamera: {substream: off}}]").cameras[0]
    assert kind.build_substream(SourceSetup(off)) is None

"""gateway.media.limits and the caps it sets: a hostile camera cannot grow memory."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, parse_config
from gateway.media.accessunit import AccessUnit
from gateway.media.assembler import AccessUnitAssembler
from gateway.media.h264 import PictureSizeError, parse_sps
from gateway.media.limits import (
    MB,
    LimitExceeded,
    StreamLimits,
    describe_bytes,
    picture_size_problem,
)
from gateway.media.normalizer import StreamNormalizer
from gateway.media.rtp_h264 import H264Depacketizer
from gateway.subscription import Subscription
from tests.unit.test_media_assembler import SEI, slice_nal
from tests.unit.test_media_h264 import build_sps


def test_defaults_are_the_documented_numbers() -> None:
    limits = StreamLimits()
    assert limits.picture_bytes == 4 * MB
    assert limits.gop_bytes == 64 * MB
    assert limits.viewer_queue_bytes == 32 * MB
    with pytest.raises(ValueError):
        StreamLimits(picture_bytes=0)


def test_describe_bytes() -> None:
    assert describe_bytes(4 * MB) == "4 MB"
    assert describe_bytes(1536) == "1.5 KB"
    assert describe_bytes(12) == "12 bytes"


@pytest.mark.attack
def test_one_timestamp_and_no_marker_is_cut_at_the_picture_cap() -> None:
    assembler = AccessUnitAssembler(max_picture_bytes=1 * MB)
    piece = slice_nal(0, body=bytes(60_000))
    with pytest.raises(LimitExceeded, match="picture larger than 1 MB: dropped"):
        for _ in range(1000):  # 60 MB if nothing stopped it
            assembler.push([piece], 1234, marker=False)
    assert assembler.oversized == 1 and assembler.dropped == 1
    assert assembler._bytes == 0 and assembler._nals == []  # the memory is let go
    # More of the same picture is ignored, not kept; the next picture is assembled.
    assert assembler.push([piece], 1234, marker=False) == []
    assert assembler._nals == []
    units = assembler.push([slice_nal(0, idr=True)], 5000, marker=True)
    assert len(units) == 1 and units[0].keyframe


@pytest.mark.attack
def test_slice_less_nal_units_held_over_are_capped_in_bytes() -> None:
    assembler = AccessUnitAssembler()
    big_sei = SEI + bytes(40_000)
    for ts in range(10):  # ten pictures of only SEI: all carried over, if uncapped
        assembler.push([big_sei], ts * 3000, marker=True)
    (unit,) = assembler.push([slice_nal(0, idr=True)], 99_000, marker=True)
    assert unit.size < 64 * 1024 + 100
    assert unit.nals[-2] == big_sei  # the newest carried NAL unit is kept


@pytest.mark.attack
def test_endless_fu_a_is_cut_at_the_nal_cap() -> None:
    depacketizer = H264Depacketizer(max_nal_size=100_000)
    start = bytes([0x7C, 0x85]) + bytes(1000)
    middle = bytes([0x7C, 0x05]) + bytes(1000)
    assert depacketizer.push(start) == []
    for _ in range(200):
        assert depacketizer.push(middle) == []
    assert depacketizer.oversized == 1
    assert depacketizer._fu_size == 0 and depacketizer._fu_parts == []


@pytest.mark.parametrize(
    ("width", "height", "absurd"),
    [
        (3840, 2160, False),
        (8192, 4320, False),  # level 6.2's largest
        (8208, 16, True),  # wider than 8192
        (16, 8208, True),
        (8192, 8192, True),  # 262144 macroblocks
        (65535, 65535, True),
    ],
)
def test_picture_size_problem(width: int, height: int, absurd: bool) -> None:
    assert (picture_size_problem(width, height) is not None) is absurd


@pytest.mark.attack
def test_an_sps_of_65535x65535_is_refused_by_name() -> None:
    # 4:4:4 crops in single pixels: 4096 macroblocks a side, less one pixel
    sps = build_sps(
        profile_idc=244, chroma_format_idc=3, width_mbs=4096, height_map_units=4096,
        crop=(0, 1, 0, 1),
    )  # fmt: skip
    with pytest.raises(PictureSizeError, match="65535x65535"):
        parse_sps(sps)
    normalizer = StreamNormalizer([sps])
    assert normalizer.info is None
    assert normalizer.refused is not None and "65535x65535" in normalizer.refused
    assert "level 6.2" in normalizer.refused


def test_a_4k_sps_is_not_refused() -> None:
    normalizer = StreamNormalizer([build_sps(width_mbs=240, height_map_units=135, crop=None)])
    assert normalizer.refused is None
    assert normalizer.info is not None and (normalizer.info.width, normalizer.info.height) == (
        3840,
        2160,
    )


def _unit(pts: int, size: int, key: bool = False) -> AccessUnit:
    nal = (b"\x65" if key else b"\x41") + bytes(size - 1)
    return AccessUnit(nals=(nal,), pts=pts, keyframe=key, arrival=0.0)


async def test_a_viewer_queue_is_capped_in_bytes() -> None:
    sub = Subscription(lambda: [], live_limit=1000, live_limit_bytes=10_000)
    await _activate(sub)
    sub.push(_unit(0, 4000, key=True))
    sub.push(_unit(1, 4000))
    assert sub.dropped == 0
    sub.push(_unit(2, 4000))  # 12000 bytes: over the cap, so skip to the next keyframe
    assert sub.dropped == 3
    sub.push(_unit(3, 4000))
    sub.push(_unit(4, 4000, key=True))
    frame = await sub.get()
    assert frame.unit.pts == 4


async def _activate(sub: Subscription) -> None:
    """Activate the subscription as a viewer's first get() does (nothing queued yet)."""
    sub.push(_unit(-1, 10, key=True))  # ignored: not yet active
    sub._activate()


def test_limits_config_block() -> None:
    base = "cameras: [{name: a, source: demo}]\n"
    assert parse_config(base).limits == StreamLimits()
    limits = parse_config(base + "limits: {picture_mb: 8, gop_mb: 128}").limits
    assert (limits.picture_bytes, limits.gop_bytes) == (8 * MB, 128 * MB)
    assert limits.viewer_queue_bytes == 32 * MB
    with pytest.raises(ConfigError, match=r"limits\.picture_mb"):
        parse_config(base + "limits: {picture_mb: 0}")
    with pytest.raises(ConfigError, match=r"limits\.frames: unknown key"):
        parse_config(base + "limits: {frames: 3}")


@pytest.mark.attack
def test_an_absurd_sps_in_band_is_refused_too() -> None:
    normalizer = StreamNormalizer()
    absurd = build_sps(width_mbs=1024, height_map_units=1024, crop=None)  # 16384x16384
    idr = bytes([0x65, 0x88]) + bytes(20)
    normalizer.process(AccessUnit(nals=(absurd, idr), pts=0, keyframe=True, arrival=0.0))
    assert normalizer.refused is not None and "16384x16384" in normalizer.refused
    assert normalizer.info is None

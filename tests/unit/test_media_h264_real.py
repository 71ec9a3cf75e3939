"""gateway.media.h264 against streams from real encoders.

Two sources: SPS NAL units captured once from real encoders (kept inline as hex, a few
dozen bytes each), and streams encoded at test time with PyAV's libx264, checked
against the settings the encoder was given.
"""

from __future__ import annotations

import fractions

import pytest

from gateway.media.h264 import (
    NAL_IDR,
    NAL_PPS,
    NAL_SEI,
    NAL_SLICE,
    NAL_SPS,
    first_mb_in_slice,
    nal_type,
    parse_sei_user_data_unregistered,
    parse_sps,
    pps_id,
    pps_sps_id,
    slice_pps_id,
    slice_type,
    split_annexb,
)

# (encoder and settings, SPS hex, width, height, profile, level, profile-level-id, fps, reorder)
CAPTURED = [
    (
        "x264 high 1920x1080 (1088 coded, cropped)",
        "67640028acd940780227e584000003000400000300f03c60c658",
        1920, 1080, "High", "4.0", "640028", 30.0, 2,
    ),
    (
        "x264 main 1280x720",
        "674d401feca02802dd08000003000800000301e078c18cb0",
        1280, 720, "Main", "3.1", "4d401f", 30.0, 2,
    ),
    (
        "x264 baseline 640x360",
        "6742c01eda0280bfe584000003000400000300f03c58ba80",
        640, 360, "Constrained Baseline", "3.0", "42c01e", 30.0, 0,
    ),
    (
        "x264 ultrafast 'high' (really Constrained Baseline) 1920x1080",
        "6742c028da01e0089f9610000003001000000303c0f1832a",
        1920, 1080, "Constrained Baseline", "4.0", "42c028", 30.0, 0,
    ),
    (
        "x264 high422 352x288",
        "677a000dbcd941609684000003000400000300f03c50a658",
        352, 288, "High 4:2:2", "1.3", "7a000d", 30.0, 2,
    ),
    (
        "x264 high444 352x288",
        "67f4000d919b282c12d080000003008000001e078a14cb",
        352, 288, "High 4:4:4 Predictive", "1.3", "f4000d", 30.0, 2,
    ),
    (
        "ffmpeg libx264 high10 352x288@25",
        "676e000da6cd9416096c0440000003004000000c83c50a6580",
        352, 288, "High 10", "1.3", "6e000d", 25.0, 2,
    ),
    (
        "x264 interlaced 720x576 (field pairs)",
        "6764001facd940b424d080000003008000001e0f8b16cb",
        720, 576, "High", "3.1", "64001f", 30.0, 2,
    ),
    (
        "x264 322x242 (odd crop)",
        "6764000dacd9415087888884000003000400000300f03c50a658",
        322, 242, "High", "1.3", "64000d", 30.0, 2,
    ),
    (
        "x264 slices=4 bframes=0 320x240@25 (poc type 2)",
        "6764000dacb40a0fd0800000030080000019078a1550",
        320, 240, "High", "1.3", "64000d", 25.0, 0,
    ),
    (
        "ffmpeg h264_metadata: crop 8/8/2/2, SAR, colour, chroma loc, 30000/1001",
        "6764000dacd94160972952c11b808080d2800001f480007530078a14cb",
        336, 284, "High", "1.3", "64000d", 30000 / 1001, 2,
    ),
    (
        "ffmpeg h264_metadata: extended SAR 7:5, overscan",
        "6764000dacd9416096ffc001c00172000003000200000300641e28532c",
        352, 288, "High", "1.3", "64000d", 25.0, 2,
    ),
    (
        "ffmpeg libx264 nal-hrd=cbr (HRD parameters in the VUI)",
        "6764000dacd9416096c04400000fa40003a983810007a10001e84e6c30078a14cb",
        352, 288, "High", "1.3", "64000d", 30000 / 1001, 2,
    ),
    (
        "ffmpeg libx264 baseline level 1b 176x144@15",
        "6742d00bd902c4ec0440000003004000000783c48992",
        176, 144, "Constrained Baseline", "1b", "42d00b", 15.0, 0,
    ),
    (
        "ffmpeg libx264 main level 5.1 1280x720",
        "674d4033d9005005bb011000000300100000030320f1832480",
        1280, 720, "Main", "5.1", "4d4033", 25.0, 0,
    ),
    (
        "GStreamer x264enc main 640x480@15",
        "674d4016d900a03db016a0c0c0d4a0000003002000000303d1e2c5c9",
        640, 480, "Main", "2.2", "4d4016", 15.0, 0,
    ),
    (
        "GStreamer openh264enc 320x180 (no timing info)",
        "6742c00d8c8d40a0cbcf00f08846a0",
        320, 180, "Constrained Baseline", "1.3", "42c00d", None, 0,
    ),
    (
        "GStreamer openh264enc 1280x720",
        "6742c01f8c8d402802dd00f08846a0",
        1280, 720, "Constrained Baseline", "3.1", "42c01f", None, 0,
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("sps_hex", "width", "height", "profile", "level", "plid", "fps", "reorder"),
    [case[1:] for case in CAPTURED],
    ids=[case[0] for case in CAPTURED],
)
def test_captured_sps(
    sps_hex: str,
    width: int,
    height: int,
    profile: str,
    level: str,
    plid: str,
    fps: float | None,
    reorder: int,
) -> None:
    info = parse_sps(bytes.fromhex(sps_hex))
    assert (info.width, info.height) == (width, height)
    assert (info.profile_name, info.level, info.profile_level_id) == (profile, level, plid)
    assert info.frame_rate == (pytest.approx(fps) if fps else None)
    assert info.max_num_reorder_frames == reorder
    assert info.sps_id == 0


def test_captured_x264_pps() -> None:
    for pps in (b"\x68\xeb\xe3\xcb\x22\xc0", b"\x68\xce\x3c\x80"):
        assert (pps_id(pps), pps_sps_id(pps)) == (0, 0)


# --- encoded at test time ------------------------------------------------------------

try:
    import av
except ImportError:  # pragma: no cover - av is a project dependency
    av = None
live = pytest.mark.skipif(
    av is None or "libx264" not in av.codecs_available, reason="needs PyAV with libx264"
)


def encode(
    width: int,
    height: int,
    frames: int = 4,
    pix_fmt: str = "yuv420p",
    rate: int = 30,
    **options: str,
) -> list[list[bytes]]:
    """Encode moving test frames; returns the NAL units of each encoded picture."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, pix_fmt
    ctx.time_base = fractions.Fraction(1, rate)
    ctx.framerate = fractions.Fraction(rate, 1)
    ctx.options = {"preset": "superfast", "threads": "1", **options}
    pictures = []
    for i in range(frames + 1):
        frame = None
        if i < frames:
            frame = av.VideoFrame(width, height, pix_fmt)
            frame.pts = i
            pattern = bytes((i * 9 + k) & 0xFF for k in range(200))  # moves: real P/B work
            for plane in frame.planes:
                size = plane.buffer_size
                plane.update((pattern * (size // 200 + 1))[:size])
        pictures += [split_annexb(bytes(p)) for p in ctx.encode(frame)]
    return pictures


def first_sps(pictures: list[list[bytes]]) -> bytes:
    return next(n for pic in pictures for n in pic if nal_type(n) == NAL_SPS)


@live
@pytest.mark.parametrize(
    ("width", "height", "kwargs", "profile", "plid_prefix"),
    [
        (1920, 1080, {"profile": "high"}, "High", "6400"),
        (1280, 720, {"profile": "main"}, "Main", "4d40"),
        (640, 360, {"profile": "baseline"}, "Constrained Baseline", "42c0"),
        (352, 288, {"pix_fmt": "yuv422p", "profile": "high422"}, "High 4:2:2", "7a00"),
        (352, 288, {"pix_fmt": "yuv444p", "profile": "high444"}, "High 4:4:4 Predictive", "f400"),
        (720, 576, {"x264opts": "interlaced=1"}, "High", "6400"),
        (322, 242, {}, "High", "6400"),
        (176, 144, {"rate": 25, "x264opts": "bframes=0"}, "High", "6400"),
    ],
)
def test_live_x264_sps(
    width: int, height: int, kwargs: dict, profile: str, plid_prefix: str
) -> None:
    rate = kwargs.get("rate", 30)
    info = parse_sps(first_sps(encode(width, height, frames=2, **kwargs)))
    assert (info.width, info.height) == (width, height)
    assert info.profile_name == profile
    assert info.profile_level_id.startswith(plid_prefix)
    assert info.frame_rate == rate


@live
def test_live_x264_multi_slice_keyframe() -> None:
    pictures = encode(320, 240, frames=3, x264opts="slices=4:bframes=0")
    first = pictures[0]
    assert [nal_type(n) for n in first[:3]] == [NAL_SPS, NAL_PPS, NAL_SEI]
    slices = [n for n in first if nal_type(n) == NAL_IDR]
    assert len(slices) == 4
    mbs = [first_mb_in_slice(n) for n in slices]
    assert mbs[0] == 0 and mbs == sorted(mbs) and len(set(mbs)) == 4
    assert all(slice_type(n) == 2 and slice_pps_id(n) == 0 for n in slices)  # I slices
    for pic in pictures[1:]:
        assert [nal_type(n) for n in pic] == [NAL_SLICE] * 4
        assert [first_mb_in_slice(n) for n in pic] == mbs
    assert parse_sps(first_sps(pictures)).max_num_reorder_frames == 0


@live
def test_live_x264_b_frames_are_visible_in_slice_headers() -> None:
    with_b = encode(320, 240, frames=8, x264opts="bframes=2:b-adapt=0:scenecut=0")
    kinds = {slice_type(n) for pic in with_b for n in pic if nal_type(n) in (1, 5)}
    assert kinds == {0, 1, 2}  # P, B, I
    assert parse_sps(first_sps(with_b)).max_num_reorder_frames >= 1
    without = encode(320, 240, frames=8, x264opts="bframes=0")
    kinds = {slice_type(n) for pic in without for n in pic if nal_type(n) in (1, 5)}
    assert kinds == {0, 2}
    assert parse_sps(first_sps(without)).max_num_reorder_frames == 0


@live
def test_live_x264_version_sei() -> None:
    # x264 announces itself in a user_data_unregistered SEI with its own UUID
    sei = next(n for n in encode(64, 64, frames=1)[0] if nal_type(n) == NAL_SEI)
    messages = parse_sei_user_data_unregistered(sei)
    assert len(messages) == 1
    uuid, text = messages[0]
    assert uuid.hex() == "dc45e9bde6d948b7962cd820d923eeef"
    assert text.startswith(b"x264 - core ")

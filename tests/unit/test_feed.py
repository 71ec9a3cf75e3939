"""The viewer feed's pure parts: timestamps across a switch, parameter sets in front of
the first picture, and what the "stream" data channel accepts."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from gateway.feed import Retimer, with_parameter_sets
from gateway.media.accessunit import AccessUnit
from gateway.media.h264 import NAL_IDR, NAL_PPS, NAL_SPS, nal_type
from gateway.webrtc.stream_channel import parse_request

SPS = bytes([0x67, 0x42, 0xC0, 0x1E, 0x8C])
PPS = bytes([0x68, 0xCE, 0x3C, 0x80])
IDR = bytes([0x65, 0x88, 0x84])
P = bytes([0x41, 0x9A, 0x02])


def stamps(retimer: Retimer, timestamps: list[int]) -> list[int]:
    return [retimer.stamp(t) for t in timestamps]


def test_before_any_switch_timestamps_pass_unchanged() -> None:
    retimer = Retimer()
    assert stamps(retimer, [1000, 4000, 7000]) == [1000, 4000, 7000]


def test_a_switch_continues_one_frame_interval_after_the_last_sent() -> None:
    retimer = Retimer()
    stamps(retimer, [0, 3000, 6000])  # 30 fps
    retimer.switch()
    # The other stream's clock is elsewhere entirely, at 25 fps.
    out = stamps(retimer, [500_000, 503_600, 507_200])
    assert out == [9000, 12_600, 16_200]  # last + 3000, then the new stream's spacing


def test_a_squashed_gop_after_a_switch_stays_one_tick_apart_then_goes_live() -> None:
    retimer = Retimer()
    stamps(retimer, [0, 3600])  # 25 fps
    retimer.switch()
    # A cached GOP of three, squashed to end at the newest (like a join), then live.
    out = stamps(retimer, [89_998, 89_999, 90_000, 93_000])
    assert out == [7200, 7201, 7202, 10_202]
    assert retimer.interval == 3000  # the one-tick steps were not taken for a frame rate


def test_switching_back_and_forth_keeps_the_timeline() -> None:
    retimer = Retimer()
    main = itertools.count(0, 3000)
    sub = itertools.count(10**9, 6000)  # 15 fps
    out: list[int] = []
    for stream, count in ((main, 5), (sub, 5), (main, 5), (sub, 5)):
        retimer.switch()
        out += [retimer.stamp(next(stream)) for _ in range(count)]
    assert all(b > a for a, b in itertools.pairwise(out))
    steps = {b - a for a, b in itertools.pairwise(out)}
    assert steps <= {3000, 6000}


@given(st.lists(st.tuples(st.booleans(), st.integers(-(2**40), 2**40)), max_size=200))
def test_output_never_goes_backwards(events: list[tuple[bool, int]]) -> None:
    retimer = Retimer()
    out = []
    for switch, timestamp in events:
        if switch:
            retimer.switch()
        out.append(retimer.stamp(timestamp))
    assert all(b > a for a, b in itertools.pairwise(out))


def unit(*nals: bytes, keyframe: bool = True) -> AccessUnit:
    return AccessUnit(tuple(nals), 90_000, keyframe, 1.0)


def test_parameter_sets_go_in_front_of_an_idr_without_them() -> None:
    fixed = with_parameter_sets(unit(IDR), unit(SPS, PPS, IDR))
    assert [nal_type(n) for n in fixed.nals] == [NAL_SPS, NAL_PPS, NAL_IDR]
    assert fixed.pts == 90_000 and fixed.keyframe


def test_an_idr_with_its_parameter_sets_is_left_alone() -> None:
    first = unit(SPS, PPS, IDR)
    assert with_parameter_sets(first, unit(SPS, PPS, IDR)) is first
    assert with_parameter_sets(unit(IDR), None).nals == (IDR,)


def test_the_channel_takes_views_and_pins_only() -> None:
    assert parse_request('{"type": "view", "view": "grid"}') == ("view", "grid")
    assert parse_request('{"type": "view", "view": "full"}') == ("view", "full")
    assert parse_request('{"type": "pin", "pin": "sub"}') == ("pin", "sub")
    assert parse_request('{"type": "pin", "pin": "auto"}') == ("pin", "auto")
    for bad in (
        b'{"type": "view", "view": "grid"}',  # binary
        "not json",
        "[]",
        "null",
        '{"type": "view", "view": "Grid"}',
        '{"type": "pin", "pin": ["main"]}',
        '{"type": ["view"], "view": "grid"}',
        '{"type": "stream", "current": "main"}',
        '{"type": "view", "view": "grid", "pad": "' + "x" * 2000 + '"}',
    ):
        assert parse_request(bad) is None, bad


@given(st.text(max_size=300) | st.binary(max_size=300))
def test_no_message_makes_the_parser_raise(message: str | bytes) -> None:
    parse_request(message)

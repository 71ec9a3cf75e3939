"""gateway.media.assembler: NAL units of RTP packets -> whole AccessUnits."""

from __future__ import annotations

import itertools

import pytest

from gateway.media.assembler import AccessUnitAssembler, TimestampUnwrapper, starts_access_unit

SPS = bytes.fromhex("6764000dacb40a0fd0800000030080000019078a1550")
PPS = bytes.fromhex("68ce3c80")
SEI = b"\x06\x05\x01\x00\x80"
AUD = b"\x09\xf0"


def ue_bits(value: int) -> str:
    code = bin(value + 1)[2:]
    return "0" * (len(code) - 1) + code


def slice_nal(first_mb: int = 0, idr: bool = False, body: bytes = b"\xaa\xbb") -> bytes:
    bits = ue_bits(first_mb) + ue_bits(7 if idr else 5) + ue_bits(0) + "1"
    bits += "0" * (-len(bits) % 8)
    head = int(bits, 2).to_bytes(len(bits) // 8, "big")
    return bytes([0x65 if idr else 0x41]) + head + body


IDR0, IDR1, IDR2, IDR3 = (slice_nal(mb, idr=True) for mb in (0, 20, 40, 60))
P0, P1 = slice_nal(0), slice_nal(20)


class FakeClock:
    def __init__(self) -> None:
        self.ticks = itertools.count(100)

    def __call__(self) -> float:
        return float(next(self.ticks))


@pytest.fixture
def asm() -> AccessUnitAssembler:
    return AccessUnitAssembler(clock=FakeClock())


def test_starts_access_unit() -> None:
    for nal in (SPS, PPS, SEI, AUD, IDR0, P0, b"\x0e\x00", b"\x0f\x00"):
        assert starts_access_unit(nal)
    for nal in (IDR1, P1, b"\x41", b"", b"\x02\x80", b"\x0c\xff"):
        assert not starts_access_unit(nal)


# --- grouping ------------------------------------------------------------------------


def test_marker_emits_at_once(asm: AccessUnitAssembler) -> None:
    [au] = asm.push([SPS, PPS, IDR0], 3000, True)
    assert au.nals == (SPS, PPS, IDR0)
    assert (au.pts, au.keyframe, au.arrival) == (3000, True, 100.0)
    [au] = asm.push([P0], 6000, True)
    assert (au.nals, au.pts, au.keyframe, au.arrival) == ((P0,), 6000, False, 101.0)
    assert asm.flush() == []
    assert (asm.emitted, asm.dropped) == (2, 0)


def test_multi_slice_keyframe_is_one_access_unit(asm: AccessUnitAssembler) -> None:
    assert asm.push([SPS, PPS], 9000, False) == []
    assert asm.push([SEI], 9000, False) == []
    assert asm.push([IDR0], 9000, False) == []
    assert asm.push([IDR1, IDR2], 9000, False) == []
    [au] = asm.push([IDR3], 9000, True)
    assert au.nals == (SPS, PPS, SEI, IDR0, IDR1, IDR2, IDR3)
    assert au.keyframe


def test_marker_less_camera_uses_timestamp_change(asm: AccessUnitAssembler) -> None:
    assert asm.push([SPS, PPS, IDR0], 1000, False) == []
    assert asm.push([IDR1], 1000, False) == []
    [au] = asm.push([P0], 4000, False)
    assert (au.nals, au.pts, au.keyframe) == ((SPS, PPS, IDR0, IDR1), 1000, True)
    [au] = asm.push([P0], 7000, False)
    assert (au.nals, au.pts, au.keyframe) == ((P0,), 4000, False)
    [au] = asm.flush()
    assert au.pts == 7000
    assert asm.flush() == []


def test_timestamp_change_and_marker_in_one_push(asm: AccessUnitAssembler) -> None:
    asm.push([P0], 1000, False)  # marker of this picture lost or never sent
    first, second = asm.push([P0], 4000, True)
    assert (first.pts, second.pts) == (1000, 4000)
    assert first.arrival < second.arrival


def test_packets_without_complete_nals_still_count(asm: AccessUnitAssembler) -> None:
    assert asm.push([], 1000, False) == []  # FU-A start: no NAL unit yet
    assert asm.push([IDR0], 1000, False) == []
    assert asm.push([], 1000, False) == []
    [au] = asm.push([], 1000, True)  # the marker came with a packet that completed nothing
    assert au.nals == (IDR0,)
    asm.push([P0], 4000, False)
    [au] = asm.push([], 7000, False)  # a timestamp change ends a picture even without NALs
    assert au.nals == (P0,)
    assert asm.push([], 7000, True) == []  # nothing to emit: no empty access units


def test_access_unit_delimiters_are_dropped(asm: AccessUnitAssembler) -> None:
    [au] = asm.push([AUD, SPS, PPS, IDR0], 0, True)
    assert au.nals == (SPS, PPS, IDR0)
    assert asm.push([AUD], 3000, True) == []
    [au] = asm.push([AUD, P0, AUD], 6000, True)
    assert au.nals == (P0,)


def test_keyframe_means_idr(asm: AccessUnitAssembler) -> None:
    [au] = asm.push([SPS, PPS, slice_nal(0, idr=False)], 3000, True)
    assert not au.keyframe
    [au] = asm.push([IDR0], 6000, True)
    assert au.keyframe


# --- NAL units without a picture -------------------------------------------------------


def test_marker_on_parameter_set_packets(asm: AccessUnitAssembler) -> None:
    # some cameras set the marker on their SPS and PPS packets
    assert asm.push([SPS], 1000, True) == []
    assert asm.push([PPS], 1000, True) == []
    assert asm.push([IDR0], 1000, False) == []
    [au] = asm.push([IDR1], 1000, True)
    assert au.nals == (SPS, PPS, IDR0, IDR1)
    assert (au.pts, au.keyframe) == (1000, True)
    assert (asm.marker_errors, asm.dropped, asm.trust_marker) == (0, 0, True)


@pytest.mark.parametrize("marker", [True, False])
def test_parameter_sets_with_their_own_timestamp(asm: AccessUnitAssembler, marker: bool) -> None:
    # ... or stamp them with another timestamp than the IDR they belong to
    asm.push([SPS, PPS], 500, marker)
    asm.push([SEI], 700, marker)
    out = asm.push([IDR0, IDR1], 1000, True) + asm.flush()
    assert [(u.nals, u.pts) for u in out] == [((SPS, PPS, SEI, IDR0, IDR1), 1000)]


def test_carried_nal_units_are_bounded(asm: AccessUnitAssembler) -> None:
    for i in range(40):
        asm.push([bytes([6, i])], 1000 * i, True)
    [au] = asm.push([P0], 99_000, True)
    assert len(au.nals) == 17
    assert au.nals[-2] == bytes([6, 39])


def test_parameter_sets_from_before_a_loss_are_kept(asm: AccessUnitAssembler) -> None:
    asm.push([SPS, PPS], 1000, True)
    asm.mark_loss()
    [au] = asm.push([IDR0], 1000, True)
    assert au.nals == (SPS, PPS, IDR0)


# --- timestamps ----------------------------------------------------------------------


def test_pts_unwraps_across_the_32_bit_boundary(asm: AccessUnitAssembler) -> None:
    start = 2**32 - 6000
    pts = []
    for i in range(6):
        [au] = asm.push([P0], (start + 3000 * i) % 2**32, True)
        pts.append(au.pts)
    assert pts == [start + 3000 * i for i in range(6)]


def test_unwrapper_many_wraps_and_backward_steps() -> None:
    u = TimestampUnwrapper()
    assert u(123) == 123
    value = 123
    for _ in range(10):  # big forward steps, several full wraps
        value += 2**30
        assert u(value % 2**32) == value
    assert u((value - 3000) % 2**32) == value - 3000  # B-frames: small step back
    assert u((value + 6000) % 2**32) == value + 6000
    u = TimestampUnwrapper()
    assert u(1000) == 1000
    assert u(2**32 - 2000) == -2000  # a step back across zero stays a small step back
    assert u(500) == 500
    assert TimestampUnwrapper()(2**32 + 5) == 5  # raw values are taken modulo 2**32


def test_b_frame_timestamps_are_not_taken_as_wraps(asm: AccessUnitAssembler) -> None:
    # decoding order I P B B with presentation timestamps 0, 9000, 3000, 6000
    got = [asm.push([P0], ts, True)[0].pts for ts in (2**32 - 3000, 6000, 0, 3000)]
    assert got == [2**32 - 3000, 2**32 + 6000, 2**32, 2**32 + 3000]


# --- packet loss ---------------------------------------------------------------------


def test_loss_mid_picture_drops_it_and_its_tail(asm: AccessUnitAssembler) -> None:
    asm.push([SPS, PPS, IDR0], 1000, False)
    asm.push([IDR1], 1000, False)
    asm.mark_loss()  # IDR2 lost
    assert asm.dropped == 1
    assert asm.push([IDR3], 1000, True) == []  # the tail is not a picture
    [au] = asm.push([P0], 4000, True)
    assert au.nals == (P0,)
    assert (asm.dropped, asm.emitted) == (1, 1)


def test_loss_between_pictures_keeps_a_cleanly_starting_picture(
    asm: AccessUnitAssembler,
) -> None:
    asm.push([P0], 1000, True)
    asm.mark_loss()  # lost packets were whole pictures, or nothing of the next one's head
    assert asm.dropped == 0
    [au] = asm.push([AUD, P0, P1], 4000, True)
    assert au.nals == (P0, P1)
    asm.mark_loss()
    [au] = asm.push([SPS, PPS, IDR0], 7000, True)
    assert au.keyframe
    assert asm.dropped == 0


def test_loss_of_a_pictures_head_drops_it(asm: AccessUnitAssembler) -> None:
    asm.push([P0], 1000, True)
    asm.mark_loss()  # the first slice of the next picture was lost
    assert asm.push([P1], 4000, True) == []
    assert asm.dropped == 1
    [au] = asm.push([P0, P1], 7000, True)  # the picture after that is whole
    assert au.nals == (P0, P1)


def test_loss_when_the_first_packet_after_it_completes_nothing(
    asm: AccessUnitAssembler,
) -> None:
    asm.push([P0], 1000, True)
    asm.mark_loss()
    assert asm.push([], 4000, False) == []  # orphan FU-A fragment of the lost first slice
    assert asm.push([P1], 4000, True) == []  # the first NAL we get is not a picture start
    assert asm.dropped == 1


def test_loss_with_a_marker_less_camera(asm: AccessUnitAssembler) -> None:
    asm.push([P0], 1000, False)
    asm.push([P0], 4000, False)
    asm.mark_loss()  # the pending picture may have lost its tail
    assert asm.dropped == 1
    assert asm.push([P0], 7000, False) == []
    [au] = asm.flush()
    assert au.pts == 7000


def test_repeated_loss_marks_count_a_picture_once(asm: AccessUnitAssembler) -> None:
    asm.push([IDR0], 1000, False)
    asm.mark_loss()
    asm.mark_loss()
    asm.push([IDR2], 1000, False)
    asm.mark_loss()
    assert asm.dropped == 1
    assert asm.flush() == []
    [au] = asm.push([IDR0, IDR1], 4000, True)
    assert au.pts == 4000


def test_loss_before_anything_arrived(asm: AccessUnitAssembler) -> None:
    asm.mark_loss()
    assert asm.dropped == 0
    [au] = asm.push([SPS, PPS, IDR0], 0, True)
    assert au.keyframe


# --- cameras that misuse the marker or the timestamp -----------------------------------


def test_marker_on_every_slice_falls_back_to_timestamps(asm: AccessUnitAssembler) -> None:
    [first] = asm.push([IDR0], 1000, True)  # sent before we can know better
    assert first.nals == (IDR0,)
    assert asm.push([IDR1], 1000, True) == []  # the rest of that picture: dropped
    assert not asm.trust_marker
    assert (asm.marker_errors, asm.dropped) == (1, 1)
    # from now on whole pictures, closed by the next timestamp
    assert asm.push([P0], 4000, True) == []
    assert asm.push([P1], 4000, True) == []
    [au] = asm.push([P0], 7000, True)
    assert (au.nals, au.pts) == ((P0, P1), 4000)


def test_marker_per_slice_detected_when_the_slice_completes_later(
    asm: AccessUnitAssembler,
) -> None:
    asm.push([IDR0], 1000, True)
    assert asm.push([], 1000, False) == []  # FU-A start of the second slice
    assert asm.push([IDR1], 1000, True) == []
    assert asm.marker_errors == 1


def test_constant_timestamps_with_markers_still_work(asm: AccessUnitAssembler) -> None:
    # a broken camera clock: every picture has the same timestamp, markers are right
    pictures = [asm.push([P0, P1], 5000, True) for _ in range(3)]
    assert [len(p) for p in pictures] == [1, 1, 1]
    assert asm.trust_marker
    assert [p[0].pts for p in pictures] == [5000] * 3


def test_default_clock_is_monotonic() -> None:
    import time

    before = time.monotonic()
    [au] = AccessUnitAssembler().push([P0], 0, True)
    assert before <= au.arrival <= time.monotonic()

"""gateway.media.normalizer: parameter-set repair, B-frame detection, stream facts."""

from __future__ import annotations

import random

from gateway.media.accessunit import AccessUnit
from gateway.media.h264 import nal_type, parse_sps
from gateway.media.normalizer import StreamInfo, StreamNormalizer

# Real x264 parameter sets (sps_id 0, pps_id 0 -> sps 0)
SPS_1080 = bytes.fromhex("67640028acd940780227e584000003000400000300f03c60c658")  # reorder 2
SPS_720 = bytes.fromhex("674d401feca02802dd08000003000800000301e078c18cb0")  # Main, reorder 2
SPS_240 = bytes.fromhex("6764000dacb40a0fd0800000030080000019078a1550")  # reorder 0, 25 fps
SPS_180 = bytes.fromhex("6742c00d8c8d40a0cbcf00f08846a0")  # openh264, no VUI timing
PPS = bytes.fromhex("68ce3c80")
SEI = b"\x06\x05\x01\x00\x80"
AUD = b"\x09\xf0"


def ue_bits(value: int) -> str:
    code = bin(value + 1)[2:]
    return "0" * (len(code) - 1) + code


def pack(bits: str) -> bytes:
    bits += "1"  # stop bit
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def sps_with_id(sps: bytes, sps_id: int) -> bytes:
    """An x264 SPS (id 0: one '1' bit after the 3 fixed bytes) given another id."""
    head = bin(int.from_bytes(sps[1:], "big"))[2:].zfill(8 * (len(sps) - 1))
    assert head[24] == "1"
    bits = head[:24] + ue_bits(sps_id) + head[25:].rstrip("0")[:-1]
    return sps[:1] + pack(bits)


def pps(pid: int, sid: int) -> bytes:
    return b"\x68" + pack(ue_bits(pid) + ue_bits(sid) + "1000")


def slice_nal(kind: str = "P", first_mb: int = 0, pps_id: int = 0) -> bytes:
    stype = {"P": 5, "B": 6, "I": 7}[kind]
    header = 0x65 if kind == "I" else 0x41
    return bytes([header]) + pack(ue_bits(first_mb) + ue_bits(stype) + ue_bits(pps_id) + "0101")


IDR = slice_nal("I")
IDR_B = slice_nal("I", first_mb=40)
P = slice_nal("P")
B = slice_nal("B")


def au(*nals: bytes, pts: int = 9000) -> AccessUnit:
    return AccessUnit(nals=nals, pts=pts, keyframe=any(nal_type(n) == 5 for n in nals), arrival=7.5)


def test_fixtures_are_what_they_claim() -> None:
    assert parse_sps(sps_with_id(SPS_1080, 3)).sps_id == 3
    assert parse_sps(sps_with_id(SPS_1080, 3)).width == 1920


def test_nothing_known_yet() -> None:
    n = StreamNormalizer()
    assert n.info is None
    assert n.generation == 0
    unit = au(IDR)
    assert n.process(unit) is unit  # nothing to insert
    assert n.info is None
    assert not n.has_b_frames


def test_sdp_parameter_sets_are_inserted_before_idr() -> None:
    n = StreamNormalizer([SPS_1080, PPS])
    assert n.generation == 1
    assert n.info == StreamInfo("640028", "High", "4.0", 1920, 1080, 30.0, True)
    unit = au(IDR, IDR_B)
    fixed = n.process(unit)
    assert fixed is not unit
    assert fixed.nals == (SPS_1080, PPS, IDR, IDR_B)
    assert (fixed.pts, fixed.keyframe, fixed.arrival) == (9000, True, 7.5)
    assert unit.nals == (IDR, IDR_B)  # the original is untouched
    assert n.repaired == 1


def test_units_that_need_nothing_are_returned_as_they_are() -> None:
    n = StreamNormalizer([SPS_1080, PPS])
    for unit in (au(P), au(B), au(SPS_1080, PPS, IDR), au(AUD, SPS_1080, PPS, SEI, IDR)):
        assert n.process(unit) is unit
    assert n.repaired == 0


def test_insertion_goes_after_aud_and_before_sei() -> None:
    n = StreamNormalizer([SPS_1080, PPS])
    assert n.process(au(AUD, SEI, IDR)).nals == (AUD, SPS_1080, PPS, SEI, IDR)
    assert n.process(au(AUD, SPS_1080, SEI, IDR)).nals == (AUD, SPS_1080, PPS, SEI, IDR)
    # A missing SPS goes before the PPS the unit carries: FFmpeg refuses a PPS whose SPS
    # it has not seen, and then every picture of the GOP.
    assert n.process(au(PPS, IDR)).nals == (SPS_1080, PPS, IDR)
    assert n.process(au(AUD, PPS, SEI, IDR)).nals == (AUD, SPS_1080, PPS, SEI, IDR)


def test_parameter_sets_after_the_first_slice_are_moved_out() -> None:
    n = StreamNormalizer([SPS_1080, PPS])
    assert n.process(au(IDR, SPS_1080, PPS)).nals == (SPS_1080, PPS, IDR)
    assert n.repaired == 1


def test_rtph264pay_config_interval_repeats_are_removed() -> None:
    # rtph264pay config-interval=-1 puts SPS/PPS before every slice of an IDR
    n = StreamNormalizer()
    unit = au(SPS_240, PPS, SEI, SPS_240, PPS, IDR, SPS_240, PPS, IDR_B)
    assert n.process(unit).nals == (SPS_240, PPS, SEI, SPS_240, PPS, IDR, IDR_B)
    late = au(P, PPS, slice_nal("P", 40))  # on any picture, not only keyframes
    assert n.process(late).nals == (P, slice_nal("P", 40))


def test_late_parameter_sets_are_still_learned() -> None:
    n = StreamNormalizer([SPS_1080, PPS])
    n.process(au(P, SPS_720))
    assert n.info is not None and n.info.width == 1280
    assert n.process(au(IDR)).nals == (SPS_720, PPS, IDR)


def test_in_band_parameter_sets_are_tracked_newest_wins() -> None:
    n = StreamNormalizer([SPS_1080, PPS])
    n.process(au(SPS_1080, PPS, IDR))  # the same SPS again: no change
    assert n.generation == 1
    new_pps = pps(0, 0) + b"\x01"  # same id, different content
    assert n.process(au(SPS_720, new_pps, IDR)).nals == (SPS_720, new_pps, IDR)
    assert n.generation == 2
    info = n.info
    assert info is not None
    assert (info.width, info.height, info.profile, info.profile_level_id) == (
        1280,
        720,
        "Main",
        "4d401f",
    )
    assert n.process(au(IDR)).nals == (SPS_720, new_pps, IDR)


def test_parameter_sets_learned_from_non_keyframes() -> None:
    n = StreamNormalizer()
    n.process(au(SPS_240, PPS, P))
    assert n.info is not None and n.info.width == 320
    assert n.process(au(IDR)).nals == (SPS_240, PPS, IDR)


def test_only_the_parameter_sets_the_idr_uses_are_inserted() -> None:
    sps1 = sps_with_id(SPS_720, 1)
    n = StreamNormalizer([SPS_1080, PPS, sps1, pps(1, 1), pps(2, 0)])
    assert n.info is not None and n.info.width == 1920  # the first SPS until an IDR says else
    assert n.generation == 1
    fixed = n.process(au(slice_nal("I", 0, 1), slice_nal("I", 40, 1)))
    assert fixed.nals[:2] == (sps1, pps(1, 1))
    assert n.info is not None and n.info.width == 1280  # the IDR made SPS 1 active
    assert n.generation == 2
    fixed = n.process(au(slice_nal("I", 0, 2), slice_nal("I", 40, 0)))
    assert fixed.nals[:3] == (SPS_1080, PPS, pps(2, 0))
    assert n.info is not None and n.info.width == 1920
    assert n.generation == 3


def test_unknown_pps_or_unparsable_slices() -> None:
    n = StreamNormalizer([SPS_1080, PPS])
    unit = au(slice_nal("I", 0, 9))  # references a PPS we never saw: nothing to insert
    assert n.process(unit) is unit
    # slice header unreadable: insert every known set rather than nothing
    assert n.process(au(b"\x65")).nals == (SPS_1080, PPS, b"\x65")


def test_keyframe_without_slices_is_left_alone() -> None:
    n = StreamNormalizer([SPS_1080, PPS])
    odd = AccessUnit(nals=(SEI,), pts=0, keyframe=True, arrival=0.0)
    assert n.process(odd) is odd


def test_malformed_parameter_sets_are_counted_never_raised() -> None:
    n = StreamNormalizer([SPS_1080, PPS, b"\x67\x64", b"\x68", b"", b"\x06\x05"])
    assert n.errors == 2
    before = n.info
    for bad in (b"\x67", b"\x67\xff\xff\xff\xff", b"\x68\x00\x00", b"\x68" + pack("1" + "0" * 7)):
        n.process(au(bad, P))
    assert n.errors == 6
    assert n.info == before
    assert n.process(au(IDR)).nals == (SPS_1080, PPS, IDR)


def test_resolution_change_bumps_generation() -> None:
    n = StreamNormalizer()
    seen = []
    for sps in (SPS_1080, SPS_1080, SPS_720, SPS_720, SPS_180, SPS_1080):
        n.process(au(sps, PPS, IDR))
        assert n.info is not None
        seen.append((n.generation, n.info.width))
    assert seen == [(1, 1920), (1, 1920), (2, 1280), (2, 1280), (3, 320), (4, 1920)]


def test_b_frames_from_slices() -> None:
    n = StreamNormalizer([SPS_240, PPS])  # VUI says max_num_reorder_frames 0
    assert n.info is not None and not n.info.has_b_frames
    n.process(au(IDR))
    n.process(au(P))
    assert not n.has_b_frames
    n.process(au(B))
    assert n.has_b_frames
    assert n.info is not None and n.info.has_b_frames
    n.process(au(P))
    assert n.has_b_frames  # sticky


def test_b_frames_hinted_by_the_sps() -> None:
    n = StreamNormalizer([SPS_1080, PPS])  # x264 with B-frames: max_num_reorder_frames 2
    assert n.info is not None and n.info.has_b_frames
    n = StreamNormalizer([SPS_180, PPS])  # openh264: bitstream_restriction says 0
    assert n.info is not None and not n.info.has_b_frames
    assert n.info.sps_frame_rate is None


def test_b_frames_are_reassessed_when_the_encoder_changes() -> None:
    n = StreamNormalizer([SPS_240, PPS])
    n.process(au(B))
    assert n.has_b_frames
    n.process(au(SPS_180, PPS, IDR))  # reconfigured camera
    assert not n.has_b_frames
    n.process(au(B))
    assert n.has_b_frames


def test_b_slice_before_any_sps() -> None:
    n = StreamNormalizer()
    n.process(au(B))
    assert n.has_b_frames
    n.process(au(SPS_240, PPS, IDR))  # the first SPS is no change of encoder
    assert n.info is not None and n.info.has_b_frames


def test_never_raises_on_garbage() -> None:
    rng = random.Random(4)
    n = StreamNormalizer([SPS_1080, PPS])
    for _ in range(2000):
        kinds = [rng.choice((0x65, 0x41, 0x67, 0x68, 0x06, 0x09)) for _ in range(rng.randint(1, 4))]
        nals = tuple(bytes([k]) + rng.randbytes(rng.randint(0, 12)) for k in kinds)
        unit = AccessUnit(nals=nals, pts=0, keyframe=rng.random() < 0.5, arrival=0.0)
        out = n.process(unit)
        kept = [x for x in out.nals if nal_type(x) not in (7, 8)]
        assert kept == [x for x in unit.nals if nal_type(x) not in (7, 8)]
        assert (out.pts, out.keyframe) == (unit.pts, unit.keyframe)
    assert n.errors > 0

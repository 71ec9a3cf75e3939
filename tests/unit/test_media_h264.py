"""gateway.media.h264 on synthetic bitstreams built bit by bit (see test_media_h264_real.py
for streams from real encoders)."""

from __future__ import annotations

import random

import pytest

from gateway.media.h264 import (
    NAL_AUD,
    NAL_FU_A,
    NAL_IDR,
    NAL_PPS,
    NAL_SEI,
    NAL_SLICE,
    NAL_SPS,
    NAL_STAP_A,
    BitReader,
    SpsInfo,
    add_emulation_prevention,
    first_mb_in_slice,
    make_sei_user_data_unregistered,
    nal_type,
    parse_sei_user_data_unregistered,
    parse_sps,
    pps_id,
    pps_sps_id,
    remove_emulation_prevention,
    slice_pps_id,
    slice_type,
    split_annexb,
)

# --- an independent bit writer, to build parameter sets and slice headers ------------


class BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, value: int) -> BitWriter:
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]
        return self

    def flag(self, value: bool | int) -> BitWriter:
        return self.u(1, int(bool(value)))

    def ue(self, value: int) -> BitWriter:
        code = value + 1
        length = code.bit_length()
        return self.u(length - 1, 0).u(length, code)

    def se(self, value: int) -> BitWriter:
        return self.ue(2 * value - 1 if value > 0 else -2 * value)

    def raw(self) -> bytes:
        bits = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))

    def rbsp(self) -> bytes:
        """The bits plus rbsp_trailing_bits (a stop bit, then zero alignment)."""
        self.bits.append(1)
        return self.raw()


def escape(rbsp: bytes) -> bytes:
    """Emulation prevention, written independently of the module under test."""
    out = bytearray()
    zeros = 0
    for b in rbsp:
        if zeros == 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def nal(header: int, w: BitWriter) -> bytes:
    return bytes([header]) + escape(w.rbsp())


def build_sps(
    *,
    profile_idc: int = 100,
    constraint_flags: int = 0,
    level_idc: int = 40,
    sps_id: int = 0,
    chroma_format_idc: int = 1,
    separate_colour_plane: bool = False,
    bit_depth_minus8: int = 0,
    scaling_lists: list[list[int] | None] | None = None,
    log2_max_frame_num_minus4: int = 0,
    poc_type: int = 0,
    log2_max_poc_lsb_minus4: int = 2,
    poc_cycle: list[int] = (),  # type: ignore[assignment]
    width_mbs: int = 120,
    height_map_units: int = 68,
    frame_mbs_only: bool = True,
    crop: tuple[int, int, int, int] | None = (0, 0, 0, 4),
    vui: dict | None = None,
    truncate_bits: int = 0,
    ue_override: dict[str, int] | None = None,
) -> bytes:
    o = ue_override or {}
    w = BitWriter().u(8, profile_idc).u(8, constraint_flags).u(8, level_idc)
    w.ue(o.get("sps_id", sps_id))
    if profile_idc in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        w.ue(chroma_format_idc)
        if chroma_format_idc == 3:
            w.flag(separate_colour_plane)
        w.ue(bit_depth_minus8).ue(bit_depth_minus8).flag(0)
        w.flag(scaling_lists is not None)
        if scaling_lists is not None:
            for deltas in scaling_lists:
                w.flag(deltas is not None)
                for d in deltas or ():
                    w.se(d)
    w.ue(log2_max_frame_num_minus4).ue(poc_type)
    if poc_type == 0:
        w.ue(log2_max_poc_lsb_minus4)
    elif poc_type == 1:
        w.flag(0).se(-2).se(3).ue(len(poc_cycle))
        for offset in poc_cycle:
            w.se(offset)
    w.ue(4).flag(0)  # max_num_ref_frames, gaps_in_frame_num_value_allowed_flag
    w.ue(width_mbs - 1).ue(height_map_units - 1).flag(frame_mbs_only)
    if not frame_mbs_only:
        w.flag(1)  # mb_adaptive_frame_field_flag
    w.flag(1)  # direct_8x8_inference_flag
    w.flag(crop is not None)
    for c in crop or ():
        w.ue(c)
    w.flag(vui is not None)
    if vui is not None:
        write_vui(w, **vui)
    if truncate_bits:
        del w.bits[-truncate_bits:]
        return bytes([0x67]) + escape(w.raw())
    return nal(0x67, w)


def write_hrd(w: BitWriter, cpbs: int) -> None:
    w.ue(cpbs - 1).u(4, 3).u(4, 5)
    for i in range(cpbs):
        w.ue(1000 * (i + 1)).ue(2000 * (i + 1)).flag(i % 2)
    w.u(5, 23).u(5, 23).u(5, 23).u(5, 24)


def write_vui(
    w: BitWriter,
    *,
    sar: tuple[int, int, int] | None = None,
    overscan: bool | None = None,
    signal: tuple[int, bool, tuple[int, int, int] | None] | None = None,
    chroma_loc: tuple[int, int] | None = None,
    timing: tuple[int, int, bool] | None = None,
    nal_hrd: int = 0,
    vcl_hrd: int = 0,
    pic_struct: bool = False,
    restriction: tuple[int, int] | None = None,
) -> None:
    w.flag(sar is not None)
    if sar:
        w.u(8, sar[0])
        if sar[0] == 255:
            w.u(16, sar[1]).u(16, sar[2])
    w.flag(overscan is not None)
    if overscan is not None:
        w.flag(overscan)
    w.flag(signal is not None)
    if signal:
        w.u(3, signal[0]).flag(signal[1]).flag(signal[2] is not None)
        if signal[2]:
            w.u(8, signal[2][0]).u(8, signal[2][1]).u(8, signal[2][2])
    w.flag(chroma_loc is not None)
    if chroma_loc:
        w.ue(chroma_loc[0]).ue(chroma_loc[1])
    w.flag(timing is not None)
    if timing:
        w.u(32, timing[0]).u(32, timing[1]).flag(timing[2])
    w.flag(nal_hrd)
    if nal_hrd:
        write_hrd(w, nal_hrd)
    w.flag(vcl_hrd)
    if vcl_hrd:
        write_hrd(w, vcl_hrd)
    if nal_hrd or vcl_hrd:
        w.flag(0)  # low_delay_hrd_flag
    w.flag(pic_struct)
    w.flag(restriction is not None)
    if restriction:
        w.flag(1).ue(2).ue(1).ue(16).ue(16).ue(restriction[0]).ue(restriction[1])


def build_slice(kind: int = NAL_IDR, first_mb: int = 0, stype: int = 7, pps: int = 0) -> bytes:
    w = BitWriter().ue(first_mb).ue(stype).ue(pps).u(4, 0b1010)
    w.u(64, 0)  # zero-filled "slice data": forces emulation prevention in the NAL
    return nal(0x60 | kind if kind == NAL_IDR else 0x40 | kind, w)


def build_pps(pid: int, sid: int) -> bytes:
    return nal(0x68, BitWriter().ue(pid).ue(sid).flag(1).flag(0).ue(0))


# --- nal_type, split_annexb ----------------------------------------------------------


def test_constants() -> None:
    assert (NAL_SLICE, NAL_IDR, NAL_SEI, NAL_SPS, NAL_PPS, NAL_AUD) == (1, 5, 6, 7, 8, 9)
    assert (NAL_STAP_A, NAL_FU_A) == (24, 28)


def test_nal_type() -> None:
    assert nal_type(b"\x67\x42") == NAL_SPS
    assert nal_type(b"\x65") == NAL_IDR
    assert nal_type(b"\x41\x9a") == NAL_SLICE
    assert nal_type(b"\x09\xf0") == NAL_AUD
    assert nal_type(b"\xfc") == NAL_FU_A  # the type bits only, whatever F and NRI say
    assert nal_type(b"") == 0


def test_split_annexb_three_and_four_byte_start_codes() -> None:
    data = b"\x00\x00\x00\x01\x67\x42\x00\x00\x01\x68\xce\x00\x00\x00\x01\x65\x88\x84"
    assert split_annexb(data) == [b"\x67\x42", b"\x68\xce", b"\x65\x88\x84"]


def test_split_annexb_drops_leading_garbage_and_empty_nals() -> None:
    data = b"\xff\x12\x00\x00\x01\x09\xf0\x00\x00\x01\x00\x00\x01\x00\x00\x00\x01\x41\x01"
    assert split_annexb(data) == [b"\x09\xf0", b"\x41\x01"]


def test_split_annexb_strips_trailing_zero_bytes() -> None:
    # trailing_zero_8bits between NAL units, and a long run of zeros before a start code
    data = b"\x00\x00\x01\x06\x05\x80\x00\x00\x00\x00\x00\x00\x01\x65\x01\x00\x00"
    assert split_annexb(data) == [b"\x06\x05\x80", b"\x65\x01"]


def test_split_annexb_without_start_code_or_empty() -> None:
    assert split_annexb(b"") == []
    assert split_annexb(b"\x65\x88\x84\x00") == []
    assert split_annexb(b"\x00\x00\x01") == []
    assert split_annexb(b"\x00\x00\x00\x01\x00\x00\x00\x01") == []


def test_split_annexb_keeps_escaped_bytes() -> None:
    body = b"\x65\x00\x00\x03\x01\x00\x00\x03\x00\x7f"
    assert split_annexb(b"\x00\x00\x00\x01" + body) == [body]


def test_split_annexb_round_trips_random_nals() -> None:
    rng = random.Random(7)
    nals = []
    for _ in range(200):
        raw = bytes(rng.choice((0, 0, 1, 3, 0x80, 0xFF)) for _ in range(rng.randint(0, 40)))
        nals.append(bytes([rng.randint(1, 23)]) + add_emulation_prevention(raw + b"\x80"))
    stream = b"".join(rng.choice((b"\x00\x00\x01", b"\x00\x00\x00\x01")) + n for n in nals)
    assert split_annexb(stream) == nals


# --- emulation prevention ------------------------------------------------------------


@pytest.mark.parametrize(
    ("escaped", "rbsp"),
    [
        (b"", b""),
        (b"\x01\x02", b"\x01\x02"),
        (b"\x00\x00\x03\x01", b"\x00\x00\x01"),
        (b"\x00\x00\x03\x00\x00\x03\x00", b"\x00\x00\x00\x00\x00"),
        (b"\x00\x00\x03\x03", b"\x00\x00\x03"),
        (b"\x12\x00\x00\x03", b"\x12\x00\x00"),  # cabac_zero_word at the end
        (b"\x00\x03\x00\x00\x03\x02\x00", b"\x00\x03\x00\x00\x02\x00"),
    ],
)
def test_remove_emulation_prevention(escaped: bytes, rbsp: bytes) -> None:
    assert remove_emulation_prevention(escaped) == rbsp


def test_emulation_prevention_round_trip() -> None:
    rng = random.Random(3)
    for _ in range(300):
        rbsp = bytes(rng.choice((0, 0, 0, 1, 2, 3, 4, 0xFF)) for _ in range(rng.randint(0, 64)))
        escaped = add_emulation_prevention(rbsp)
        expected = escape(rbsp)
        assert escaped == expected + (b"\x03" if expected.endswith(b"\x00\x00") else b"")
        for bad in (b"\x00\x00\x00", b"\x00\x00\x01", b"\x00\x00\x02"):
            assert bad not in escaped
        assert not escaped.endswith(b"\x00\x00")
        assert remove_emulation_prevention(escaped) == rbsp


# --- BitReader -----------------------------------------------------------------------


def test_bitreader_read_bits() -> None:
    r = BitReader(b"\xa5\x0f\xf0")
    assert r.bits_left == 24
    assert r.read_bits(0) == 0
    assert r.read_bits(1) == 1
    assert r.read_bits(3) == 0b010
    assert r.read_bits(8) == 0x50  # across a byte boundary
    assert r.read_bits(12) == 0xFF0
    assert r.bits_left == 0
    with pytest.raises(ValueError):
        r.read_bits(1)


def test_bitreader_long_reads_and_errors() -> None:
    r = BitReader(bytes(range(1, 9)))
    assert r.read_bits(64) == 0x0102030405060708
    with pytest.raises(ValueError):
        BitReader(b"\x00").read_bits(9)
    with pytest.raises(ValueError):
        BitReader(b"\x00").read_bits(-1)
    with pytest.raises(ValueError):
        BitReader(b"\x00").skip_bits(9)
    r = BitReader(b"\x80")
    assert r.read_flag() is True
    assert r.read_bit() == 0
    r.skip_bits(6)
    assert r.bits_left == 0


def test_bitreader_exp_golomb() -> None:
    values = [0, 1, 2, 3, 4, 7, 8, 254, 255, 65535, 2**32 - 2]
    w = BitWriter()
    for v in values:
        w.ue(v)
    for v in (0, 1, -1, 2, -2, 100, -100, 2**31 - 1, -(2**31) + 1):
        w.se(v)
    r = BitReader(w.raw())
    assert [r.read_ue() for _ in values] == values
    assert [r.read_se() for _ in range(9)] == [0, 1, -1, 2, -2, 100, -100, 2**31 - 1, -(2**31) + 1]


def test_bitreader_exp_golomb_known_codes() -> None:
    # 1 | 010 | 011 | 00100 | 00111 -> 0, 1, 2, 3, 6
    r = BitReader(bytes([0b10100110, 0b01000011, 0b10000000]))
    assert [r.read_ue() for _ in range(5)] == [0, 1, 2, 3, 6]


def test_bitreader_exp_golomb_errors() -> None:
    with pytest.raises(ValueError):
        BitReader(b"\x00\x00\x00\x00\x80").read_ue()  # 32 leading zeros: too long
    with pytest.raises(ValueError):
        BitReader(b"\x00\x00").read_ue()  # runs out while counting zeros
    with pytest.raises(ValueError):
        BitReader(b"\x01").read_ue()  # runs out in the info bits


# --- SPS -----------------------------------------------------------------------------


def test_sps_1080p_high_without_vui() -> None:
    info = parse_sps(build_sps())
    assert info == SpsInfo(0, 100, 0, 40, 1920, 1080, None, None)
    assert info.profile_level_id == "640028"
    assert info.profile_name == "High"
    assert info.level == "4.0"


def test_sps_baseline_poc_type_2_no_crop() -> None:
    sps = build_sps(
        profile_idc=66,
        constraint_flags=0xC0,
        level_idc=31,
        sps_id=3,
        poc_type=2,
        width_mbs=80,
        height_map_units=45,
        crop=None,
    )
    info = parse_sps(sps)
    assert (info.sps_id, info.width, info.height) == (3, 1280, 720)
    assert info.profile_level_id == "42c01f"
    assert info.profile_name == "Constrained Baseline"
    assert info.level == "3.1"


def test_sps_poc_type_1_with_cycle() -> None:
    sps = build_sps(profile_idc=77, poc_type=1, poc_cycle=[5, -7, 0, 300], crop=None)
    info = parse_sps(sps)
    assert (info.width, info.height, info.profile_name) == (1920, 1088, "Main")


def test_sps_poc_type_1_with_255_offsets_and_vui_after_it() -> None:
    sps = build_sps(poc_type=1, poc_cycle=list(range(-127, 128)), vui={"timing": (1, 50, True)})
    assert parse_sps(sps).frame_rate == 25.0


def test_sps_scaling_lists_4x4_and_8x8() -> None:
    lists: list[list[int] | None] = [None] * 8
    lists[0] = [-8]  # first delta makes nextScale 0: "use the default list", one value only
    lists[1] = [1] * 16
    lists[3] = [5, -3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -2]
    lists[6] = [2] * 64  # an 8x8 list
    lists[7] = [120, -128]  # 8+120=128, then 128-128=0: the rest repeats, no more deltas
    sps = build_sps(scaling_lists=lists, vui={"restriction": (1, 3)})
    info = parse_sps(sps)
    assert (info.width, info.height, info.max_num_reorder_frames) == (1920, 1080, 1)


def test_sps_scaling_delta_out_of_range() -> None:
    lists: list[list[int] | None] = [[-129]] + [None] * 7
    with pytest.raises(ValueError):
        parse_sps(build_sps(scaling_lists=lists))


def test_sps_444_with_twelve_scaling_lists_and_separate_planes() -> None:
    lists: list[list[int] | None] = [None] * 12
    lists[11] = [1] * 64
    sps = build_sps(
        profile_idc=244,
        chroma_format_idc=3,
        separate_colour_plane=True,
        bit_depth_minus8=2,
        scaling_lists=lists,
        width_mbs=22,
        height_map_units=18,
        crop=(1, 2, 3, 4),  # ChromaArrayType 0: crop units are single pixels
    )
    info = parse_sps(sps)
    assert (info.width, info.height) == (352 - 3, 288 - 7)
    assert info.profile_name == "High 4:4:4 Predictive"
    assert info.profile_level_id == "f40028"


@pytest.mark.parametrize(
    ("chroma", "frame_mbs_only", "expected"),
    [
        (0, True, (320 - 3, 240 - 7)),  # monochrome: 1x1 crop units
        (0, False, (320 - 3, 480 - 14)),  # monochrome fields: 1x2
        (1, True, (320 - 6, 240 - 14)),  # 4:2:0: 2x2
        (1, False, (320 - 6, 480 - 28)),  # 4:2:0 fields: 2x4
        (2, True, (320 - 6, 240 - 7)),  # 4:2:2: 2x1
        (2, False, (320 - 6, 480 - 14)),  # 4:2:2 fields: 2x2
        (3, True, (320 - 3, 240 - 7)),  # 4:4:4: 1x1
    ],
)
def test_sps_cropping_units(chroma: int, frame_mbs_only: bool, expected: tuple[int, int]) -> None:
    sps = build_sps(
        profile_idc=122 if chroma < 3 else 244,
        chroma_format_idc=chroma,
        width_mbs=20,
        height_map_units=15,
        frame_mbs_only=frame_mbs_only,
        crop=(1, 2, 3, 4),
    )
    assert (parse_sps(sps).width, parse_sps(sps).height) == expected


def test_sps_interlaced_1080i() -> None:
    # 1080i: 34 map units (field pairs) of 32 lines = 1088, cropped by 2 units of 4 lines
    sps = build_sps(height_map_units=34, frame_mbs_only=False, crop=(0, 0, 0, 2))
    assert (parse_sps(sps).width, parse_sps(sps).height) == (1920, 1080)


def test_sps_full_vui() -> None:
    vui = {
        "sar": (255, 4, 3),
        "overscan": True,
        "signal": (5, True, (1, 1, 1)),
        "chroma_loc": (1, 2),
        "timing": (1001, 60000, True),
        "nal_hrd": 2,
        "vcl_hrd": 1,
        "pic_struct": True,
        "restriction": (2, 4),
    }
    info = parse_sps(build_sps(vui=vui))
    assert info.frame_rate == pytest.approx(29.97, abs=0.001)
    assert info.max_num_reorder_frames == 2


def test_sps_vui_minimal_and_variants() -> None:
    assert parse_sps(build_sps(vui={})).frame_rate is None
    info = parse_sps(build_sps(vui={"sar": (1, 0, 0), "timing": (1, 60, False)}))
    assert (info.frame_rate, info.max_num_reorder_frames) == (30.0, None)
    info = parse_sps(build_sps(vui={"signal": (5, False, None), "restriction": (0, 1)}))
    assert (info.frame_rate, info.max_num_reorder_frames) == (None, 0)
    # a zero tick or time scale means "unknown", not a division by zero
    assert parse_sps(build_sps(vui={"timing": (0, 60, False)})).frame_rate is None
    assert parse_sps(build_sps(vui={"timing": (1, 0, False)})).frame_rate is None


def test_sps_truncated_vui_keeps_what_was_read() -> None:
    vui = {"timing": (1, 50, True), "restriction": (2, 4)}
    full = parse_sps(build_sps(vui=vui))
    assert (full.frame_rate, full.max_num_reorder_frames) == (25.0, 2)
    clipped = parse_sps(build_sps(vui=vui, truncate_bits=5))  # inside bitstream_restriction
    assert (clipped.width, clipped.height, clipped.frame_rate) == (1920, 1080, 25.0)
    assert clipped.max_num_reorder_frames is None
    clipped = parse_sps(build_sps(vui=vui, truncate_bits=80))  # inside timing info
    assert (clipped.width, clipped.frame_rate) == (1920, None)


def test_sps_emulation_prevention_is_removed() -> None:
    # num_units_in_tick = 1 is 31 zero bits then a one: the NAL must carry 00 00 03
    sps = build_sps(vui={"timing": (1, 2 * 15, True)})
    assert b"\x00\x00\x03" in sps
    assert parse_sps(sps).frame_rate == 15.0


@pytest.mark.parametrize(
    ("profile_idc", "flags", "name"),
    [
        (66, 0x00, "Baseline"),
        (66, 0x40, "Constrained Baseline"),
        (66, 0xC0, "Constrained Baseline"),
        (77, 0x40, "Main"),
        (88, 0x00, "Extended"),
        (100, 0x00, "High"),
        (100, 0x08, "Progressive High"),
        (100, 0x0C, "Constrained High"),
        (110, 0x00, "High 10"),
        (110, 0x10, "High 10 Intra"),
        (122, 0x00, "High 4:2:2"),
        (122, 0x10, "High 4:2:2 Intra"),
        (244, 0x00, "High 4:4:4 Predictive"),
        (244, 0x10, "High 4:4:4 Intra"),
        (44, 0x00, "CAVLC 4:4:4 Intra"),
        (118, 0x00, "Multiview High"),
        (128, 0x00, "Stereo High"),
        (83, 0x00, "Scalable Baseline"),
        (86, 0x00, "Scalable High"),
        (99, 0x00, "Unknown (99)"),
    ],
)
def test_profile_names(profile_idc: int, flags: int, name: str) -> None:
    assert SpsInfo(0, profile_idc, flags, 30, 16, 16, None, None).profile_name == name


@pytest.mark.parametrize(
    ("profile_idc", "flags", "level_idc", "level", "plid"),
    [
        (66, 0xE0, 30, "3.0", "42e01e"),
        (66, 0xF0, 11, "1b", "42f00b"),  # Baseline 1b: level_idc 11 + constraint_set3
        (77, 0x10, 11, "1b", "4d100b"),
        (66, 0x00, 11, "1.1", "42000b"),
        (100, 0x10, 11, "1.1", "64100b"),  # set3 means "intra" in high profiles, not 1b
        (100, 0x00, 9, "1b", "640009"),
        (100, 0x00, 10, "1.0", "64000a"),
        (100, 0x00, 52, "5.2", "640034"),
        (100, 0x00, 62, "6.2", "64003e"),
    ],
)
def test_levels_and_profile_level_id(
    profile_idc: int, flags: int, level_idc: int, level: str, plid: str
) -> None:
    info = SpsInfo(0, profile_idc, flags, level_idc, 16, 16, None, None)
    assert (info.level, info.profile_level_id) == (level, plid)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ue_override": {"sps_id": 32}},
        {"chroma_format_idc": 4},
        {"bit_depth_minus8": 7},
        {"log2_max_frame_num_minus4": 13},
        {"poc_type": 3},
        {"log2_max_poc_lsb_minus4": 13},
        {"poc_type": 1, "poc_cycle": [0] * 256},
        {"width_mbs": 2000},
        {"height_map_units": 2000},
        {"width_mbs": 2, "crop": (8, 8, 0, 0)},  # cropped to nothing
        {"height_map_units": 1, "crop": (0, 0, 4, 4)},
    ],
)
def test_sps_out_of_range_fields(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        parse_sps(build_sps(**kwargs))


def test_sps_wrong_nal_or_empty() -> None:
    for data in (b"", b"\x67", b"\x68\x42\x00\x1e", b"\x65" + build_sps()[1:]):
        with pytest.raises(ValueError):
            parse_sps(data)


def test_sps_every_truncation_raises_valueerror_or_keeps_geometry() -> None:
    sps = build_sps(
        vui={"sar": (255, 4, 3), "timing": (1, 60, True), "nal_hrd": 1, "restriction": (1, 2)}
    )
    full = parse_sps(sps)
    for cut in range(len(sps)):
        try:
            info = parse_sps(sps[:cut])
        except ValueError:
            continue
        # only a VUI can be cut short without an error, and never the picture size
        assert (info.width, info.height) == (full.width, full.height)


def test_sps_random_garbage_only_raises_valueerror() -> None:
    rng = random.Random(1)
    base = build_sps(scaling_lists=[[1] * 16] * 6 + [[1] * 64] * 2, vui={"nal_hrd": 3})
    for i in range(1500):
        if i % 2:
            data = bytes([0x67]) + rng.randbytes(rng.randint(0, 40))
        else:  # bit flips in a valid SPS reach the deep branches
            data = bytearray(base)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(1, len(data))] ^= 1 << rng.randrange(8)
            data = bytes(data)
        try:
            info = parse_sps(data)
        except ValueError:
            continue
        assert info.width > 0 and info.height > 0


# --- PPS and slice headers -----------------------------------------------------------


def test_pps_ids() -> None:
    assert (pps_id(b"\x68\xce\x3c\x80"), pps_sps_id(b"\x68\xce\x3c\x80")) == (0, 0)  # x264
    assert (pps_id(build_pps(7, 3)), pps_sps_id(build_pps(7, 3))) == (7, 3)
    assert (pps_id(build_pps(255, 31)), pps_sps_id(build_pps(255, 31))) == (255, 31)


@pytest.mark.parametrize("data", [b"", b"\x68", b"\x68\x00", b"\x67\xce", build_pps(256, 0)])
def test_pps_errors(data: bytes) -> None:
    with pytest.raises(ValueError):
        pps_id(data)
    with pytest.raises(ValueError):
        pps_sps_id(data)


def test_pps_sps_id_out_of_range() -> None:
    assert pps_id(build_pps(1, 32)) == 1
    with pytest.raises(ValueError):
        pps_sps_id(build_pps(1, 32))


@pytest.mark.parametrize("raw_type", range(10))
def test_slice_type_mod_5(raw_type: int) -> None:
    kind = NAL_IDR if raw_type % 5 == 2 else NAL_SLICE
    assert slice_type(build_slice(kind, 0, raw_type)) == raw_type % 5


def test_slice_header_fields() -> None:
    s = build_slice(NAL_SLICE, first_mb=8159, stype=6, pps=12)
    assert (first_mb_in_slice(s), slice_type(s), slice_pps_id(s)) == (8159, 1, 12)
    s = build_slice(NAL_IDR, first_mb=0, stype=2, pps=0)
    assert (first_mb_in_slice(s), slice_type(s), slice_pps_id(s)) == (0, 2, 0)


def test_slice_header_needs_only_the_nal_head() -> None:
    big = build_slice(NAL_SLICE, 5, 5, 1) + bytes(100_000)
    assert (first_mb_in_slice(big), slice_type(big)) == (5, 0)


def test_slice_helpers_on_other_nals_and_garbage() -> None:
    for data in (b"", b"\x67\x64\x00\x28", b"\x06\x05", b"\x41", b"\x41\x00\x00\x00"):
        assert slice_type(data) is None
        assert first_mb_in_slice(data) is None
        assert slice_pps_id(data) is None
    assert slice_type(build_slice(NAL_SLICE, 0, 10)) is None  # slice_type > 9 is invalid
    assert slice_pps_id(build_slice(NAL_SLICE, 0, 0, 256)) is None


# --- SEI -----------------------------------------------------------------------------

UUID = bytes(range(16))


@pytest.mark.parametrize("size", [0, 1, 16, 238, 239, 240, 494, 1000])
def test_sei_round_trip(size: int) -> None:
    payload = bytes((i * 37) % 5 for i in range(size))  # plenty of 00 00 0x sequences
    sei = make_sei_user_data_unregistered(UUID, payload)
    assert nal_type(sei) == NAL_SEI
    assert sei[0] == 0x06
    for bad in (b"\x00\x00\x00", b"\x00\x00\x01", b"\x00\x00\x02"):
        assert bad not in sei
    assert sei.endswith(b"\x80")  # rbsp_trailing_bits
    assert parse_sei_user_data_unregistered(sei) == [(UUID, payload)]
    # survives an Annex-B round trip
    assert split_annexb(b"\x00\x00\x00\x01" + sei + b"\x00\x00\x01\x65\x88") == [sei, b"\x65\x88"]


def test_sei_payload_size_coding() -> None:
    # 16 + 239 = 255 bytes: size coded as 0xFF 0x00
    sei = make_sei_user_data_unregistered(UUID, b"\x11" * 239)
    assert sei[1:4] == b"\x05\xff\x00"
    sei = make_sei_user_data_unregistered(UUID, b"\x11" * 4)
    assert sei[1:3] == b"\x05\x14"


def test_sei_several_messages() -> None:
    body2 = bytes(16) + b"second"
    rbsp = (
        b"\x01\x02\xab\xcd"  # pic_timing, 2 bytes: skipped
        + b"\x05\x13"
        + UUID
        + b"abc"
        + b"\x05"
        + bytes([len(body2)])
        + body2
        + b"\x05\x0f"
        + bytes(15)  # too short for a UUID: skipped
        + b"\x80"
    )
    sei = b"\x06" + add_emulation_prevention(rbsp)
    assert parse_sei_user_data_unregistered(sei) == [(UUID, b"abc"), (bytes(16), b"second")]


def test_sei_malformed_and_foreign() -> None:
    good = b"\x05\x13" + UUID + b"abc"
    assert parse_sei_user_data_unregistered(b"\x06" + good + b"\x05\x40" + UUID) == [
        (UUID, b"abc")
    ]  # the second message claims more bytes than there are
    assert parse_sei_user_data_unregistered(b"\x06" + good + b"\xff\xff") == [(UUID, b"abc")]
    assert parse_sei_user_data_unregistered(b"\x06" + good + b"\x05") == [(UUID, b"abc")]
    assert parse_sei_user_data_unregistered(b"\x06") == []
    assert parse_sei_user_data_unregistered(b"\x06\x80") == []
    assert parse_sei_user_data_unregistered(b"") == []
    assert parse_sei_user_data_unregistered(b"\x65" + good) == []
    rng = random.Random(5)
    for _ in range(500):
        parse_sei_user_data_unregistered(b"\x06" + rng.randbytes(rng.randint(0, 30)))


def test_sei_rejects_bad_uuid() -> None:
    with pytest.raises(ValueError):
        make_sei_user_data_unregistered(b"short", b"")

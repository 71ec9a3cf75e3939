"""H.264 bitstream helpers (ITU-T H.264 / ISO 14496-10): NAL units, SPS, slice headers, SEI.

Pure functions on bytes. We never decode pictures: the gateway only needs to know where NAL
units are, which ones are parameter sets and keyframes, and the stream facts in the SPS
(profile, level, resolution, frame rate) that the browser negotiation and the API report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.media.limits import picture_size_problem

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
NAL_STAP_A = 24
NAL_FU_A = 28

SEI_USER_DATA_UNREGISTERED = 5

_START_CODE = b"\x00\x00\x01"
_EMULATION = b"\x00\x00\x03"

# Profiles whose SPS carries chroma format, bit depth and scaling lists (7.3.2.1.1).
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})

_PROFILE_NAMES = {
    66: "Baseline",
    77: "Main",
    88: "Extended",
    100: "High",
    110: "High 10",
    122: "High 4:2:2",
    244: "High 4:4:4 Predictive",
    44: "CAVLC 4:4:4 Intra",
    83: "Scalable Baseline",
    86: "Scalable High",
    118: "Multiview High",
    128: "Stereo High",
    134: "MFC High",
    135: "MFC Depth High",
    138: "Multiview Depth High",
    139: "Enhanced Multiview Depth High",
}

# aspect_ratio_idc meaning "sar_width and sar_height follow" (Table E-1).
_EXTENDED_SAR = 255

# Read bound on picture size in macroblocks per dimension: far beyond any real picture, so
# an absurd size is read whole and refused by name (PictureSizeError), not as garbage.
_MAX_MBS_PER_SIDE = 1 << 16


class PictureSizeError(ValueError):
    """A well-formed SPS announcing a picture size no camera makes (beyond level 6.2)."""


def nal_type(nal: bytes) -> int:
    """nal_unit_type of a NAL unit (0, "unspecified", for an empty one)."""
    return nal[0] & 0x1F if nal else 0


def split_annexb(data: bytes) -> list[bytes]:
    """Split an Annex-B byte stream into NAL units (without start codes).

    Accepts 3- and 4-byte start codes: a 4-byte code is a 3-byte one after a zero byte,
    and NAL units never end in a zero byte (7.4.1), so trailing zeros are stripped.
    Bytes before the first start code are garbage (e.g. a stream joined mid-NAL) and
    dropped, as are empty NAL units.
    """
    nals: list[bytes] = []
    pos = data.find(_START_CODE)
    while pos >= 0:
        start = pos + 3
        pos = data.find(_START_CODE, start)
        nal = data[start:pos] if pos >= 0 else data[start:]
        nal = nal.rstrip(b"\x00")
        if nal:
            nals.append(nal)
    return nals


def remove_emulation_prevention(data: bytes) -> bytes:
    """NAL payload -> RBSP: drop the 0x03 of every 00 00 03 (7.4.1).

    Every 00 00 03 inside a NAL unit is emulation prevention: an encoder must escape a
    literal 00 00 03 as 00 00 03 03, so no look-ahead at the next byte is needed.
    """
    pos = data.find(_EMULATION)
    if pos < 0:
        return data
    out = bytearray()
    start = 0
    while pos >= 0:
        out += data[start : pos + 2]
        start = pos + 3
        pos = data.find(_EMULATION, start)
    out += data[start:]
    return bytes(out)


def add_emulation_prevention(rbsp: bytes) -> bytes:
    """RBSP -> NAL payload: escape 00 00 0x (x <= 3) as 00 00 03 0x."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    if zeros >= 2:  # trailing cabac_zero_words: 0x03 keeps them out of the next start code
        out.append(3)
    return bytes(out)


class BitReader:
    """MSB-first reader of an RBSP (emulation prevention already removed).

    The data is held as one big int: shifts and bit_length() beat bit-by-bit loops
    by far in Python, and parameter sets and slice heads are only a few dozen bytes.
    """

    __slots__ = ("_pos", "_size", "_value")

    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._size = len(data) * 8
        self._pos = 0

    @property
    def bits_left(self) -> int:
        return self._size - self._pos

    def read_bits(self, n: int) -> int:
        if n < 0:
            raise ValueError("negative bit count")
        end = self._pos + n
        if end > self._size:
            raise ValueError("bitstream exhausted")
        self._pos = end
        return (self._value >> (self._size - end)) & ((1 << n) - 1)

    def read_bit(self) -> int:
        return self.read_bits(1)

    def read_flag(self) -> bool:
        return self.read_bits(1) == 1

    def skip_bits(self, n: int) -> None:
        if n < 0 or self._pos + n > self._size:
            raise ValueError("bitstream exhausted")
        self._pos += n

    def read_ue(self) -> int:
        """Unsigned Exp-Golomb (9.1); values above 2**32 - 2 are invalid in H.264."""
        left = self._size - self._pos
        rest = self._value & ((1 << left) - 1)
        zeros = left - rest.bit_length()  # leading zero bits before the marker 1
        if zeros > 31:
            raise ValueError("Exp-Golomb code too long")
        if 2 * zeros + 1 > left:
            raise ValueError("bitstream exhausted")
        self._pos += zeros + 1
        return (1 << zeros) - 1 + self.read_bits(zeros)

    def read_se(self) -> int:
        """Signed Exp-Golomb (9.1.1): 1, -1, 2, -2, ... for codeNum 1, 2, 3, 4, ..."""
        k = self.read_ue()
        return (k + 1) >> 1 if k & 1 else -(k >> 1)


def _ue_max(r: BitReader, limit: int, what: str) -> int:
    value = r.read_ue()
    if value > limit:
        raise ValueError(f"{what} out of range: {value}")
    return value


@dataclass(frozen=True)
class SpsInfo:
    """The stream facts of one sequence parameter set."""

    sps_id: int
    profile_idc: int
    constraint_flags: int  # constraint_set0..5 flags + reserved bits: the byte after profile
    level_idc: int
    width: int  # displayed size: after cropping, fields combined into frames
    height: int
    frame_rate: float | None  # from VUI timing info; None when absent
    max_num_reorder_frames: int | None  # from VUI bitstream_restriction; None when absent
    # What reading a slice's frame_num needs (7.4.2.1.1); not part of equality.
    log2_max_frame_num: int = field(default=4, compare=False)
    gaps_in_frame_num_allowed: bool = field(default=False, compare=False)
    separate_colour_plane: bool = field(default=False, compare=False)

    @property
    def profile_level_id(self) -> str:
        """The SDP `profile-level-id` (RFC 6184): profile_idc, constraint byte, level_idc."""
        return f"{self.profile_idc:02x}{self.constraint_flags:02x}{self.level_idc:02x}"

    @property
    def profile_name(self) -> str:
        p, c = self.profile_idc, self.constraint_flags
        set1, set3, set4, set5 = c & 0x40, c & 0x10, c & 0x08, c & 0x04
        if p == 66 and set1:
            return "Constrained Baseline"
        if p == 100 and set4 and set5:
            return "Constrained High"
        if p == 100 and set4:
            return "Progressive High"
        if p in (110, 122, 244) and set3:
            # set3 marks the intra-only variants of the high profiles (A.2.8-A.2.11).
            return {110: "High 10 Intra", 122: "High 4:2:2 Intra", 244: "High 4:4:4 Intra"}[p]
        return _PROFILE_NAMES.get(p, f"Unknown ({p})")

    @property
    def level(self) -> str:
        # Level 1b: level_idc 11 + constraint_set3 in Baseline/Main/Extended, else idc 9 (A.3.1).
        legacy_1b = self.profile_idc in (66, 77, 88) and self.constraint_flags & 0x10
        if self.level_idc == 9 or (self.level_idc == 11 and legacy_1b):
            return "1b"
        return f"{self.level_idc // 10}.{self.level_idc % 10}"


def parse_sps(nal: bytes) -> SpsInfo:
    """Parse a complete SPS NAL unit (header byte included).

    Raises ValueError on anything malformed or truncated before the VUI. A VUI cut short
    is tolerated (the fields it did not reach stay None): real cameras ship SPSs with a
    clipped bitstream_restriction, and decoders (FFmpeg included) play them.
    """
    if nal_type(nal) != NAL_SPS:
        raise ValueError("not an SPS NAL unit")
    r = BitReader(remove_emulation_prevention(nal[1:]))
    profile_idc = r.read_bits(8)
    constraint_flags = r.read_bits(8)
    level_idc = r.read_bits(8)
    sps_id = _ue_max(r, 31, "seq_parameter_set_id")

    chroma_format_idc = 1  # 4:2:0 unless a high profile says otherwise
    separate_colour_plane = False
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = _ue_max(r, 3, "chroma_format_idc")
        if chroma_format_idc == 3:
            separate_colour_plane = r.read_flag()
        _ue_max(r, 6, "bit_depth_luma_minus8")
        _ue_max(r, 6, "bit_depth_chroma_minus8")
        r.skip_bits(1)  # qpprime_y_zero_transform_bypass_flag
        if r.read_flag():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.read_flag():
                    _skip_scaling_list(r, 16 if i < 6 else 64)

    log2_max_frame_num = _ue_max(r, 12, "log2_max_frame_num_minus4") + 4
    poc_type = _ue_max(r, 2, "pic_order_cnt_type")
    if poc_type == 0:
        _ue_max(r, 12, "log2_max_pic_order_cnt_lsb_minus4")
    elif poc_type == 1:
        r.skip_bits(1)  # delta_pic_order_always_zero_flag
        r.read_se()  # offset_for_non_ref_pic
        r.read_se()  # offset_for_top_to_bottom_field
        for _ in range(_ue_max(r, 255, "num_ref_frames_in_pic_order_cnt_cycle")):
            r.read_se()  # offset_for_ref_frame
    r.read_ue()  # max_num_ref_frames
    gaps_allowed = r.read_flag()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = _ue_max(r, _MAX_MBS_PER_SIDE - 1, "pic_width_in_mbs_minus1") + 1
    height_map_units = _ue_max(r, _MAX_MBS_PER_SIDE - 1, "pic_height_in_map_units_minus1") + 1
    frame_mbs_only = r.read_flag()
    if not frame_mbs_only:
        r.skip_bits(1)  # mb_adaptive_frame_field_flag
    r.skip_bits(1)  # direct_8x8_inference_flag

    width = width_mbs * 16
    # Interlaced streams count map units in field pairs: a frame is twice as tall (7-18).
    height = height_map_units * 16 * (1 if frame_mbs_only else 2)
    if r.read_flag():  # frame_cropping_flag
        crop = [r.read_ue() for _ in range(4)]  # left, right, top, bottom
        chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
        if chroma_array_type == 0:
            unit_x, unit_y = 1, 1
        else:  # SubWidthC, SubHeightC of Table 6-1
            unit_x, unit_y = {1: (2, 2), 2: (2, 1), 3: (1, 1)}[chroma_array_type]
        unit_y *= 1 if frame_mbs_only else 2
        width -= unit_x * (crop[0] + crop[1])
        height -= unit_y * (crop[2] + crop[3])
        if width <= 0 or height <= 0:
            raise ValueError("frame cropping removes the whole picture")
    problem = picture_size_problem(width, height)
    if problem is not None:
        raise PictureSizeError(problem)

    frame_rate: float | None = None
    reorder: int | None = None
    if r.read_flag():  # vui_parameters_present_flag
        frame_rate, reorder = _parse_vui(r)
    return SpsInfo(
        sps_id=sps_id,
        profile_idc=profile_idc,
        constraint_flags=constraint_flags,
        level_idc=level_idc,
        width=width,
        height=height,
        frame_rate=frame_rate,
        max_num_reorder_frames=reorder,
        log2_max_frame_num=log2_max_frame_num,
        gaps_in_frame_num_allowed=gaps_allowed,
        separate_colour_plane=separate_colour_plane,
    )


def _skip_scaling_list(r: BitReader, size: int) -> None:
    last = next_scale = 8
    for _ in range(size):
        if next_scale != 0:
            delta = r.read_se()
            if not -128 <= delta <= 127:
                raise ValueError("delta_scale out of range")
            next_scale = (last + delta + 256) % 256
        last = next_scale if next_scale != 0 else last


def _parse_vui(r: BitReader) -> tuple[float | None, int | None]:
    """Annex E.1.1; returns (frame rate, max_num_reorder_frames), tolerating truncation."""
    frame_rate: float | None = None
    try:
        # aspect_ratio_info_present_flag, aspect_ratio_idc (255: sar_width, sar_height follow)
        if r.read_flag() and r.read_bits(8) == _EXTENDED_SAR:
            r.skip_bits(32)
        if r.read_flag():  # overscan_info_present_flag
            r.skip_bits(1)
        if r.read_flag():  # video_signal_type_present_flag
            r.skip_bits(4)  # video_format, video_full_range_flag
            if r.read_flag():  # colour_description_present_flag
                r.skip_bits(24)
        if r.read_flag():  # chroma_loc_info_present_flag
            r.read_ue()
            r.read_ue()
        if r.read_flag():  # timing_info_present_flag
            num_units_in_tick = r.read_bits(32)
            time_scale = r.read_bits(32)
            r.skip_bits(1)  # fixed_frame_rate_flag
            if num_units_in_tick and time_scale:
                # One frame is two ticks (field-based clock, E.2.1).
                frame_rate = time_scale / (2 * num_units_in_tick)
        nal_hrd = r.read_flag()
        if nal_hrd:
            _skip_hrd(r)
        vcl_hrd = r.read_flag()
        if vcl_hrd:
            _skip_hrd(r)
        if nal_hrd or vcl_hrd:
            r.skip_bits(1)  # low_delay_hrd_flag
        r.skip_bits(1)  # pic_struct_present_flag
        if not r.read_flag():  # bitstream_restriction_flag
            return frame_rate, None
        r.skip_bits(1)  # motion_vectors_over_pic_boundaries_flag
        for _ in range(4):  # max_bytes_per_pic_denom .. log2_max_mv_length_vertical
            r.read_ue()
        reorder = _ue_max(r, 16, "max_num_reorder_frames")
        r.read_ue()  # max_dec_frame_buffering
        return frame_rate, reorder
    except ValueError:
        return frame_rate, None


def _skip_hrd(r: BitReader) -> None:
    cpb_cnt = _ue_max(r, 31, "cpb_cnt_minus1") + 1
    r.skip_bits(8)  # bit_rate_scale, cpb_size_scale
    for _ in range(cpb_cnt):
        r.read_ue()  # bit_rate_value_minus1
        r.read_ue()  # cpb_size_value_minus1
        r.skip_bits(1)  # cbr_flag
    r.skip_bits(20)  # four delay/offset lengths, 5 bits each


def _header_fields(nal: bytes, count: int) -> list[int]:
    """The first `count` ue(v) fields after the NAL header byte.

    Only the head of the NAL is unescaped: slices are large and the fields are tiny
    (a ue field is at most 63 bits; one escape byte can follow every two bytes).
    """
    r = BitReader(remove_emulation_prevention(nal[1 : 1 + 13 * count]))
    return [r.read_ue() for _ in range(count)]


def pps_id(nal: bytes) -> int:
    """pic_parameter_set_id of a PPS NAL unit; ValueError if not a valid PPS."""
    if nal_type(nal) != NAL_PPS:
        raise ValueError("not a PPS NAL unit")
    value = _header_fields(nal, 1)[0]
    if value > 255:
        raise ValueError("pic_parameter_set_id out of range")
    return value


def pps_sps_id(nal: bytes) -> int:
    """seq_parameter_set_id referenced by a PPS NAL unit; ValueError if not a valid PPS."""
    if nal_type(nal) != NAL_PPS:
        raise ValueError("not a PPS NAL unit")
    pid, sid = _header_fields(nal, 2)
    if pid > 255 or sid > 31:
        raise ValueError("PPS ids out of range")
    return sid


def _slice_header(nal: bytes, count: int) -> list[int] | None:
    if nal_type(nal) not in (NAL_SLICE, NAL_IDR):
        return None
    try:
        return _header_fields(nal, count)
    except ValueError:
        return None


def first_mb_in_slice(nal: bytes) -> int | None:
    """first_mb_in_slice of a slice NAL (0 = the slice starts a picture); None otherwise."""
    fields = _slice_header(nal, 1)
    return fields[0] if fields else None


def slice_type(nal: bytes) -> int | None:
    """slice_type mod 5 (0=P, 1=B, 2=I, 3=SP, 4=SI) of a slice NAL; None otherwise."""
    fields = _slice_header(nal, 2)
    if fields is None or fields[1] > 9:
        return None
    return fields[1] % 5


def slice_pps_id(nal: bytes) -> int | None:
    """pic_parameter_set_id referenced by a slice NAL; None if not a parsable slice."""
    fields = _slice_header(nal, 3)
    if fields is None or fields[2] > 255:
        return None
    return fields[2]


def slice_frame_num(nal: bytes, sps: SpsInfo) -> int | None:
    """frame_num of a slice NAL coded with `sps`; None if not a parsable slice."""
    if nal_type(nal) not in (NAL_SLICE, NAL_IDR):
        return None
    try:
        r = BitReader(remove_emulation_prevention(nal[1:48]))
        for _ in range(3):  # first_mb_in_slice, slice_type, pic_parameter_set_id
            r.read_ue()
        if sps.separate_colour_plane:
            r.skip_bits(2)  # colour_plane_id
        return r.read_bits(sps.log2_max_frame_num)
    except ValueError:
        return None


def nal_ref_idc(nal: bytes) -> int:
    """0 for a picture no other picture refers to (droppable), else 1-3."""
    return (nal[0] >> 5) & 3 if nal else 0


def _sei_number(value: int) -> bytes:
    """SEI payload type/size coding: 0xFF per full 255, then the remainder (7.3.2.3.1)."""
    return b"\xff" * (value // 255) + bytes([value % 255])


def make_sei_user_data_unregistered(uuid16: bytes, payload: bytes) -> bytes:
    """A complete SEI NAL unit holding one user_data_unregistered message (D.1.7)."""
    if len(uuid16) != 16:
        raise ValueError("user_data_unregistered needs a 16-byte UUID")
    body = uuid16 + payload
    rbsp = _sei_number(SEI_USER_DATA_UNREGISTERED) + _sei_number(len(body)) + body + b"\x80"
    return bytes([NAL_SEI]) + add_emulation_prevention(rbsp)


def parse_sei_user_data_unregistered(nal: bytes) -> list[tuple[bytes, bytes]]:
    """(uuid, payload) of every user_data_unregistered message in an SEI NAL unit.

    Never raises: a non-SEI NAL gives [], a malformed SEI gives the messages before the
    damage (camera SEI is arbitrary and must not break the stream).
    """
    if nal_type(nal) != NAL_SEI:
        return []
    data = remove_emulation_prevention(nal[1:])
    found: list[tuple[bytes, bytes]] = []
    pos, end = 0, len(data)
    # Messages continue while more than the rbsp_trailing_bits byte (0x80) remains.
    while pos < end and not (pos == end - 1 and data[pos] == 0x80):
        values = []
        for _ in range(2):  # payloadType, payloadSize
            value = 0
            while pos < end and data[pos] == 0xFF:
                value += 255
                pos += 1
            if pos >= end:
                return found
            values.append(value + data[pos])
            pos += 1
        ptype, size = values
        if pos + size > end:
            return found
        if ptype == SEI_USER_DATA_UNREGISTERED and size >= 16:
            found.append((data[pos : pos + 16], data[pos + 16 : pos + size]))
        pos += size
    return found

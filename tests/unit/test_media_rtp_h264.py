"""gateway.media.rtp_h264: RTP parsing (RFC 3550) and H.264 depacketizing (RFC 6184)."""

from __future__ import annotations

import dataclasses
import random
import struct

import pytest

from gateway.media import rtp_h264
from gateway.media.rtp_h264 import H264Depacketizer, RtpPacket, parse_rtp


def rtp(
    payload: bytes = b"\x65\x88",
    *,
    pt: int = 96,
    seq: int = 1,
    ts: int = 90_000,
    ssrc: int = 0x1234_5678,
    marker: bool = False,
    csrcs: tuple[int, ...] = (),
    extension: bytes | None = None,
    padding: int = 0,
    version: int = 2,
) -> bytes:
    b0 = (version << 6) | (0x20 if padding else 0) | (0x10 if extension is not None else 0)
    b0 |= len(csrcs)
    data = struct.pack("!BBHII", b0, (0x80 if marker else 0) | pt, seq, ts, ssrc)
    data += b"".join(struct.pack("!I", c) for c in csrcs)
    if extension is not None:
        data += struct.pack("!HH", 0xBEDE, len(extension) // 4) + extension
    data += payload
    if padding:
        data += bytes(padding - 1) + bytes([padding])
    return data


def fu_a(nal: bytes, size: int) -> list[bytes]:
    """Split one NAL unit into FU-A payloads of at most `size` NAL bytes each."""
    indicator = (nal[0] & 0xE0) | 28
    body = nal[1:]
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    out = []
    for i, chunk in enumerate(chunks):
        header = nal[0] & 0x1F
        header |= 0x80 if i == 0 else 0
        header |= 0x40 if i == len(chunks) - 1 else 0
        out.append(bytes([indicator, header]) + chunk)
    return out


def stap_a(*nals: bytes) -> bytes:
    nri = max(n[0] & 0x60 for n in nals)
    return bytes([nri | 24]) + b"".join(struct.pack("!H", len(n)) + n for n in nals)


SPS = bytes.fromhex("67640028acd940780227e584000003000400000300f03c60c658")
PPS = bytes.fromhex("68ebe3cb22c0")
IDR = b"\x65\x88\x84" + bytes(range(256)) * 8


# --- parse_rtp -----------------------------------------------------------------------


def test_parse_rtp_fields() -> None:
    p = parse_rtp(rtp(b"\x41\x9a", pt=96, seq=65535, ts=2**32 - 1, ssrc=2**32 - 1, marker=True))
    assert p == RtpPacket(96, 65535, 2**32 - 1, 2**32 - 1, True, b"\x41\x9a")
    p = parse_rtp(rtp(b"", pt=127, seq=0, ts=0, ssrc=0))
    assert (p.payload_type, p.marker, p.payload) == (127, False, b"")


def test_rtp_packet_is_frozen_with_slots() -> None:
    p = parse_rtp(rtp())
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.sequence = 2  # type: ignore[misc]
    assert not hasattr(p, "__dict__")


def test_parse_rtp_skips_csrcs_extension_and_padding() -> None:
    data = rtp(b"\x65\x01\x02", csrcs=(1, 2, 3), extension=b"\x10\xff\x00\x00" * 2, padding=7)
    p = parse_rtp(data)
    assert p.payload == b"\x65\x01\x02"
    assert p.ssrc == 0x1234_5678
    assert parse_rtp(rtp(b"\x41", extension=b"")).payload == b"\x41"  # zero-length extension
    assert parse_rtp(rtp(b"\x41", padding=1)).payload == b"\x41"  # the count byte alone
    assert parse_rtp(rtp(b"", padding=4)).payload == b""


@pytest.mark.parametrize(
    "data",
    [
        b"",
        rtp()[:11],
        rtp(version=0),
        rtp(version=1),
        rtp(version=3),
        rtp(b"", csrcs=(1, 2))[:-1],  # the CSRC list runs past the end
        rtp(b"", extension=b"")[:-1],  # extension header cut short
        rtp(b"\x41", extension=b"\x00" * 8)[:-6],  # extension longer than the packet
        bytes([0xA0]) + rtp(b"\x41\x00")[1:],  # padding count 0
        bytes([0xA0]) + rtp(b"\x41\x05")[1:],  # padding 5 > 2 payload bytes
        bytes([0xB0]) + rtp(b"\x00\x00\x00\x00\x05")[1:],  # extension eats the padding
    ],
)
def test_parse_rtp_rejects_malformed(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_rtp(data)


def test_parse_rtp_fuzz_only_valueerror() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        data = bytes([0x80 | rng.randrange(64)]) + rng.randbytes(rng.randint(0, 40))
        try:
            p = parse_rtp(data)
        except ValueError:
            continue
        assert len(p.payload) <= len(data) - 12


# --- H264Depacketizer: single NAL, STAP-A --------------------------------------------


def test_single_nal_units_pass_through() -> None:
    d = H264Depacketizer()
    for kind in range(1, 24):
        payload = bytes([0x60 | kind, 0x11, 0x22])
        assert d.push(payload) == [payload]
    assert d.dropped == 0


def test_stap_a_is_split() -> None:
    d = H264Depacketizer()
    assert d.push(stap_a(SPS, PPS, b"\x06\x05\x80")) == [SPS, PPS, b"\x06\x05\x80"]
    assert d.push(stap_a(b"\x09\xf0")) == [b"\x09\xf0"]
    assert d.dropped == 0


def test_stap_a_damage_keeps_whole_nals_before_it() -> None:
    d = H264Depacketizer()
    good = stap_a(SPS, PPS)
    assert d.push(good + b"\x00\x10\x65") == [SPS, PPS]  # last size runs past the end
    assert d.push(good + b"\x00") == [SPS, PPS]  # half a size field
    assert d.push(good + b"\x00\x00\x65") == [SPS, PPS]  # zero-size NAL
    assert d.dropped == 3
    assert d.push(b"\x18") == []  # no NAL units at all
    assert d.push(b"\x18\xff\xff") == []
    assert d.dropped == 4


# --- H264Depacketizer: FU-A ----------------------------------------------------------


def test_fu_a_reassembly() -> None:
    d = H264Depacketizer()
    fragments = fu_a(IDR, 500)
    assert len(fragments) == 5
    out: list[bytes] = []
    for i, fragment in enumerate(fragments):
        got = d.push(fragment)
        assert got == ([] if i < len(fragments) - 1 else [IDR])
        out += got
    assert out == [IDR]
    assert d.dropped == 0


def test_fu_a_header_rebuilt_from_indicator_and_fu_header() -> None:
    d = H264Depacketizer()
    nal = b"\x41" + bytes(100)  # NRI 2, non-IDR slice
    fragments = fu_a(nal, 60)
    assert fragments[0][:2] == b"\x5c\x81"  # indicator NRI 2 type 28, header S + type 1
    assert d.push(fragments[0]) == []
    assert d.push(fragments[1]) == [nal]


def test_fu_a_with_start_and_end_in_one_fragment() -> None:
    d = H264Depacketizer()
    assert d.push(b"\x7c\xc5\x88\x84") == [b"\x65\x88\x84"]


@pytest.mark.parametrize("lost", [0, 1, 2])
def test_fu_a_without_its_start_is_dropped(lost: int) -> None:
    d = H264Depacketizer()
    fragments = fu_a(IDR, 600)  # start, middle, middle, end
    d.reset()  # the caller's gap handling; nothing in progress, nothing counted
    assert d.dropped == 0
    for fragment in fragments[lost + 1 :]:
        assert d.push(fragment) == []
    assert d.dropped == len(fragments) - lost - 1
    assert d.push(b"\x41\x01") == [b"\x41\x01"]  # and the stream goes on


def test_fu_a_loss_in_the_middle_with_reset() -> None:
    d = H264Depacketizer()
    first, second = fu_a(IDR, 600), fu_a(b"\x41" + bytes(900), 600)
    assert d.push(first[0]) == []
    assert d.push(first[1]) == []
    d.reset()  # sequence gap: first[2] lost
    assert d.dropped == 1
    assert d.push(first[3]) == []  # the end of a NAL we no longer hold
    assert d.dropped == 2
    assert [d.push(f) for f in second] == [[], [b"\x41" + bytes(900)]]


def test_fu_a_new_start_abandons_the_unfinished_one() -> None:
    d = H264Depacketizer()
    first, second = fu_a(IDR, 700), fu_a(b"\x41" + bytes(50), 40)
    d.push(first[0])
    assert d.push(second[0]) == []
    assert d.dropped == 1
    assert d.push(second[1]) == [b"\x41" + bytes(50)]


def test_fu_a_type_mismatch_drops_both() -> None:
    d = H264Depacketizer()
    d.push(fu_a(IDR, 700)[0])
    foreign_middle = fu_a(b"\x41" + bytes(2000), 700)[1]
    assert d.push(foreign_middle) == []
    assert d.dropped == 2  # the partial IDR and the stray fragment
    assert d.push(fu_a(IDR, 700)[-1]) == []  # nothing to finish now
    assert d.dropped == 3


def test_other_packet_during_fu_a_drops_the_partial() -> None:
    d = H264Depacketizer()
    d.push(fu_a(IDR, 700)[0])
    assert d.push(PPS) == [PPS]
    assert d.dropped == 1
    d.push(fu_a(IDR, 700)[0])
    assert d.push(stap_a(SPS, PPS)) == [SPS, PPS]
    assert d.dropped == 2


def test_runaway_fu_a_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtp_h264, "MAX_NAL_SIZE", 1000)
    d = H264Depacketizer()
    fragments = fu_a(b"\x65" + bytes(3000), 400)
    assert all(d.push(f) == [] for f in fragments)
    assert d.dropped == 1 + len(fragments) - 3  # the capped partial (at 1200 bytes), orphans
    assert d.push(fu_a(b"\x65" + bytes(900), 400)[0]) == []  # a fresh start still works


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x80\x01",  # forbidden_zero_bit
        b"\x19\x00\x00\x00\x02\x67\x42",  # STAP-B
        b"\x1a\x00\x00\x00",  # MTAP16
        b"\x1b\x00\x00\x00",  # MTAP24
        b"\x1d\x85\x00\x00\x65",  # FU-B
        b"\x00\x01",  # type 0
        b"\x1e\x01",  # reserved 30
        b"\x1f\x01",  # reserved 31
        b"\x7c",  # FU-A without header
        b"\x7c\x85",  # FU-A without data
    ],
)
def test_unsupported_or_broken_payloads_are_dropped(payload: bytes) -> None:
    d = H264Depacketizer()
    assert d.push(payload) == []
    assert d.dropped == 1


def test_depacketizer_never_raises() -> None:
    rng = random.Random(2)
    d = H264Depacketizer()
    for _ in range(5000):
        kind = rng.choice((1, 5, 24, 28, 28, 28, 25, 0, 31))
        payload = bytes([rng.choice((0x00, 0x60, 0x80)) | kind]) + rng.randbytes(rng.randint(0, 8))
        for nal in d.push(payload):
            assert nal and not nal[0] & 0x80


def test_round_trip_random_nals_any_mtu() -> None:
    rng = random.Random(9)
    headers = [rng.choice((0x65, 0x41, 0x06, 0x67, 0x68)) for _ in range(300)]
    nals = [bytes([h]) + rng.randbytes(rng.randint(1, 3000)) for h in headers]
    for mtu in (50, 500, 1200, 4000):
        d, out, pending = H264Depacketizer(), [], []
        for nal in nals:
            if len(nal) <= mtu // 4:  # small ones are aggregated, as payloaders do
                pending.append(nal)
                continue
            if pending:
                out += d.push(stap_a(*pending))
                pending = []
            payloads = [nal] if len(nal) <= mtu else fu_a(nal, mtu - 2)
            for payload in payloads:
                out += d.push(payload)
        if pending:
            out += d.push(stap_a(*pending))
        assert out == nals
        assert d.dropped == 0

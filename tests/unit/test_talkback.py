"""Talk back's pure parts: the backchannel in a camera's SDP, the RTP it gets, the
encoder's output per codec."""

from __future__ import annotations

import fractions
import struct

import av
import numpy as np
import pytest

from gateway.media.rtcp import SenderReport, build_sender_report, parse_sender_reports
from gateway.talkback.encoder import TalkEncoder
from gateway.talkback.rtp import RtpPacketizer, aac_hbr_payload
from gateway.talkback.sdp import Backchannel, BackchannelUnsupported, find_backchannel

GST_SDP = """v=0
o=- 1 1 IN IP4 127.0.0.1
s=Session streamed with GStreamer
t=0 0
a=control:*
m=video 0 RTP/AVP 96
a=rtpmap:96 H264/90000
a=control:stream=0
a=recvonly
m=audio 0 RTP/AVP {pt}
a=rtpmap:{pt} {rtpmap}
{fmtp}a=control:stream=1
a=sendonly
"""
BASE = "rtsp://127.0.0.1:554/cam/"


def sdp(pt: int = 0, rtpmap: str = "PCMU/8000", fmtp: str = "") -> str:
    return GST_SDP.format(pt=pt, rtpmap=rtpmap, fmtp=f"a=fmtp:{pt} {fmtp}\n" if fmtp else "")


def test_pcmu_backchannel_with_its_urls() -> None:
    bc = find_backchannel(sdp(), BASE)
    assert (bc.codec, bc.payload_type, bc.clock_rate, bc.channels) == ("PCMU", 0, 8000, 1)
    assert bc.control_url == BASE + "stream=1"
    assert bc.aggregate_url == BASE
    assert bc.samples_per_packet == 160


def test_pcma_static_type_without_rtpmap() -> None:
    text = sdp(8, "PCMA/8000").replace("a=rtpmap:8 PCMA/8000\n", "")
    assert find_backchannel(text, BASE).codec == "PCMA"


def test_aac_hbr_backchannel() -> None:
    fmtp = "streamtype=5;profile-level-id=1;mode=AAC-hbr;config=1408;sizelength=13;indexlength=3;indexdeltalength=3"  # noqa: E501
    bc = find_backchannel(sdp(96, "MPEG4-GENERIC/16000/1", fmtp), BASE)
    assert (bc.codec, bc.clock_rate, bc.config) == ("AAC", 16000, b"\x14\x08")
    assert bc.samples_per_packet == 1024


def test_aac_latm_mode_is_refused_with_a_reason() -> None:
    with pytest.raises(BackchannelUnsupported, match="AAC-hbr"):
        find_backchannel(sdp(96, "MPEG4-GENERIC/16000/1", "mode=AAC-lbr;config=1408"), BASE)


def test_g726_is_unsupported_and_named() -> None:
    with pytest.raises(BackchannelUnsupported, match=r"G\.726.*PCMU, PCMA or AAC"):
        find_backchannel(sdp(97, "G726-32/8000"), BASE)


def test_camera_sound_alone_is_no_backchannel() -> None:
    text = sdp().replace("a=sendonly", "a=recvonly")
    with pytest.raises(BackchannelUnsupported, match="no audio backchannel"):
        find_backchannel(text, BASE)


def test_rtp_numbering_and_timestamps() -> None:
    packetizer = RtpPacketizer(8, 8000, ssrc=0x1234)
    first = packetizer.packet(b"\xd5" * 160, 160, now=100.0)
    second = packetizer.packet(b"\xd5" * 160, 160, now=100.02)
    h1 = struct.unpack("!BBHII", first[:12])
    h2 = struct.unpack("!BBHII", second[:12])
    assert h1[0] == 0x80 and h1[1] == 0x80 | 8 and h2[1] == 8  # marker on the first only
    assert h2[2] == (h1[2] + 1) & 0xFFFF
    assert h2[3] == (h1[3] + 160) & 0xFFFFFFFF
    assert h1[4] == h2[4] == 0x1234
    assert len(first) == 12 + 160


def test_timestamps_skip_silence_and_stalls() -> None:
    packetizer = RtpPacketizer(0, 8000)
    stamps = [
        struct.unpack("!I", packetizer.packet(b"x", 160, now=10.0 + i * 0.02)[4:8])[0]
        for i in range(5)
    ]  # 100 ms of sound, ending at 10.1
    packetizer.new_spurt()
    resumed = packetizer.packet(b"x", 160, now=12.1)  # 2 s of silence later
    assert resumed[1] & 0x80  # marked
    expected = (stamps[-1] + 160 + 2 * 8000) & 0xFFFFFFFF
    assert abs(struct.unpack("!I", resumed[4:8])[0] - expected) <= 1
    jittery = packetizer.packet(b"x", 160, now=12.15)  # 30 ms behind: samples count
    resumed_at = struct.unpack("!I", resumed[4:8])[0]
    assert struct.unpack("!I", jittery[4:8])[0] == (resumed_at + 160) & 0xFFFFFFFF
    stalled = packetizer.packet(b"x", 160, now=12.54)  # 400 ms behind: on to the clock
    assert abs(struct.unpack("!I", stalled[4:8])[0] - (resumed_at + 3520) % 2**32) <= 1
    assert not stalled[1] & 0x80  # not a new spurt


def test_the_sender_report_clock_and_counts() -> None:
    packetizer = RtpPacketizer(8, 8000, ssrc=0x1234)
    assert packetizer.timestamp_at(99.0) is None  # nothing sent: no report
    first = packetizer.packet(b"\xd5" * 160, 160, now=100.0)
    packetizer.packet(b"\xd5" * 160, 160, now=100.02)
    start = struct.unpack("!I", first[4:8])[0]
    assert packetizer.timestamp_at(100.0) == start
    assert packetizer.timestamp_at(101.0) == (start + 8000) % 2**32  # on through silence
    assert (packetizer.packets, packetizer.octets) == (2, 320)
    report = build_sender_report(0x1234, 1_700_000_000.25, start, 2, 320)
    assert parse_sender_reports(report) == [SenderReport(0x1234, 1_700_000_000.25, start)]
    assert struct.unpack("!II", report[20:28]) == (2, 320)
    assert report[28 + 1] == 202 and b"camgate" in report[28:]  # SDES CNAME follows


def test_aac_hbr_payload_header() -> None:
    payload = aac_hbr_payload(b"x" * 300)
    assert payload[:2] == (16).to_bytes(2, "big")
    assert int.from_bytes(payload[2:4], "big") >> 3 == 300
    assert payload[4:] == b"x" * 300


def _tone_frames(seconds: float) -> list[av.AudioFrame]:
    frames = []
    for i in range(int(seconds * 50)):
        t = np.arange(i * 960, (i + 1) * 960) / 48000
        tone = (np.sin(2 * np.pi * 1000 * t) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(
            np.stack([tone, tone]).T.reshape(1, -1).copy(), format="s16", layout="stereo"
        )
        frame.sample_rate = 48000
        frame.pts = i * 960
        frame.time_base = fractions.Fraction(1, 48000)
        frames.append(frame)
    return frames


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_g711_encoder_makes_20ms_packets(codec: str) -> None:
    encoder = TalkEncoder(Backchannel(codec, 0, 8000, 1, "u", "u"))
    sizes = [len(p) for f in _tone_frames(1.0) for p in encoder.encode(f)]
    assert not encoder.heavy
    assert set(sizes) == {160} and 48 <= len(sizes) <= 50


def test_aac_encoder_makes_one_frame_per_packet() -> None:
    encoder = TalkEncoder(Backchannel("AAC", 96, 16000, 1, "u", "u", b"\x14\x08"))
    payloads = [p for f in _tone_frames(1.0) for p in encoder.encode(f)]
    assert encoder.heavy
    assert 12 <= len(payloads) <= 16  # 15.6 frames a second, less the encoder's delay
    for payload in payloads:
        assert int.from_bytes(payload[2:4], "big") >> 3 == len(payload) - 4

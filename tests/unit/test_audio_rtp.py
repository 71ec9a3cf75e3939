"""The camera side of audio: SDP audio sections, RTP audio depacketizing, RTCP sender
reports and capture clocks. Hypothesis checks that hostile bytes give a clear error."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.media.audio import AudioFormat, AudioPacket
from gateway.media.rtcp import CaptureClock, SenderReport, parse_sender_reports
from gateway.media.rtp_audio import (
    AacLayout,
    AudioDepacketizer,
    AudioPayloadError,
)
from gateway.rtsp.sdp_audio import AudioTrack, audio_specific_config, find_audio
from gateway.sources.rtsp_audio import AudioReceiver

BASE = "rtsp://cam/live"
VIDEO = "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:stream=0\r\n"
HBR = AacLayout(13, 3, 3)


def sdp(audio: str) -> str:
    return "v=0\r\ns=x\r\na=control:*\r\n" + VIDEO + audio


# --- SDP ---------------------------------------------------------------------------------


def test_no_audio_section_is_none() -> None:
    assert find_audio(sdp(""), BASE) is None


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("m=audio 0 RTP/AVP 8\r\n", AudioFormat("PCMA", 8000, 1)),
        ("m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", AudioFormat("PCMU", 8000, 1)),
        ("m=audio 0 RTP/AVP 97\r\na=rtpmap:97 opus/48000/2\r\n", AudioFormat("OPUS", 48000, 2)),
    ],
)
def test_passthrough_codecs(section: str, expected: AudioFormat) -> None:
    track = find_audio(sdp(section + "a=control:stream=1\r\n"), BASE)
    assert track is not None
    assert track.format == expected
    assert track.refused is None
    assert track.control_url == "rtsp://cam/live/stream=1"


def test_aac_hbr() -> None:
    section = (
        "m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/16000/1\r\n"
        "a=fmtp:97 streamtype=5;profile-level-id=15;mode=AAC-hbr;config=1408;"
        "SizeLength=13;IndexLength=3;IndexDeltaLength=3\r\n"
    )
    track = find_audio(sdp(section), BASE)
    assert track is not None
    assert track.format == AudioFormat("AAC", 16000, 1, bytes.fromhex("1408"))
    assert track.aac == HBR
    assert track.control_url == BASE  # no a=control: the aggregate


@pytest.mark.parametrize(
    ("section", "refusal"),
    [
        ("m=audio 0 RTP/AVP 97\r\na=rtpmap:97 G726-32/8000\r\n", "G726-32 8000 Hz: not supported"),
        ("m=audio 0 RTP/AVP 98\r\na=rtpmap:98 L16/44100/2\r\n", "L16 44100 Hz: not supported"),
        ("m=audio 0 RTP/AVP 14\r\n", "MPA: not supported"),
        (
            "m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/16000\r\n"
            "a=fmtp:97 mode=CELP-cbr\r\n",
            "MPEG4-GENERIC mode celp-cbr: not supported",
        ),
        (
            "m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/16000\r\n"
            "a=fmtp:97 mode=AAC-hbr;sizelength=13;config=zz\r\n",
            "MPEG4-GENERIC with a broken config: not supported",
        ),
    ],
)
def test_refused_codecs_say_what(section: str, refusal: str) -> None:
    track = find_audio(sdp(section), BASE)
    assert track is not None
    assert track.format is None
    assert track.refused == refusal


def test_backchannel_section_is_skipped() -> None:
    section = (
        "m=audio 0 RTP/AVP 0\r\na=control:back\r\na=sendonly\r\n"
        "m=audio 0 RTP/AVP 8\r\na=control:audio\r\na=recvonly\r\n"
    )
    track = find_audio(sdp(section), BASE)
    assert track is not None
    assert track.format == AudioFormat("PCMA", 8000, 1)
    assert track.control_url.endswith("/audio")


@settings(max_examples=300)
@given(st.text(max_size=400))
def test_find_audio_never_raises(text: str) -> None:
    find_audio(sdp("m=audio 0 RTP/AVP 97\r\n" + text), BASE)


# --- depacketizing -----------------------------------------------------------------------


def aac_packet(sizes: list[int], payloads: list[bytes], deltas: list[int] | None = None) -> bytes:
    deltas = deltas or [0] * len(sizes)
    bits = 0
    value = 0
    for size, delta in zip(sizes, deltas, strict=True):
        value = (value << 16) | (size << 3) | delta
        bits += 16
    return struct.pack("!H", bits) + value.to_bytes(bits // 8, "big") + b"".join(payloads)


def test_g711_packet_is_one_frame_and_timestamps_unwrap() -> None:
    depacketizer = AudioDepacketizer()
    first = depacketizer.push(b"\x55" * 160, 0xFFFFFF00, False)
    second = depacketizer.push(b"\x55" * 160, 0x000000A0, False)
    assert first == [(0xFFFFFF00, b"\x55" * 160)]
    assert second[0][0] == 0xFFFFFF00 + 0x1A0  # past 2**32, not back to 0xA0


def test_aac_several_access_units() -> None:
    depacketizer = AudioDepacketizer(HBR)
    frames = depacketizer.push(aac_packet([3, 2], [b"abc", b"de"]), 1000, True)
    assert frames == [(1000, b"abc"), (2024, b"de")]


def test_aac_index_delta_spaces_frames() -> None:
    depacketizer = AudioDepacketizer(HBR)
    frames = depacketizer.push(aac_packet([1, 1], [b"a", b"b"], [0, 1]), 0, True)
    assert [t for t, _ in frames] == [0, 2048]


def test_aac_fragments_are_reassembled_on_the_marker() -> None:
    depacketizer = AudioDepacketizer(HBR)
    assert depacketizer.push(aac_packet([6], [b"abc"]), 500, False) == []
    assert depacketizer.push(aac_packet([6], [b"def"]), 500, True) == [(500, b"abcdef")]


def test_aac_fragment_over_the_cap_is_refused() -> None:
    depacketizer = AudioDepacketizer(HBR, max_frame=100)
    with pytest.raises(AudioPayloadError, match="over the cap"):
        depacketizer.push(aac_packet([8000], [b"x" * 50]), 0, False)


def test_aac_incomplete_fragment_is_dropped_and_next_frame_works() -> None:
    depacketizer = AudioDepacketizer(HBR)
    depacketizer.push(aac_packet([6], [b"abc"]), 0, False)
    with pytest.raises(AudioPayloadError):
        depacketizer.push(aac_packet([6], [b"d"]), 0, True)
    assert depacketizer.push(aac_packet([2], [b"ok"]), 1024, True) == [(1024, b"ok")]


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x00", b"\x00\x00", b"\xff\xff\x00", aac_packet([9], [b"abc"])[:3]],
)
def test_aac_garbage_is_a_clear_error(payload: bytes) -> None:
    with pytest.raises(AudioPayloadError):
        AudioDepacketizer(HBR).push(payload, 0, True)


@settings(max_examples=500)
@given(st.lists(st.tuples(st.binary(max_size=80), st.integers(0, 2**32 - 1), st.booleans())))
def test_aac_depacketizer_fuzz(packets: list[tuple[bytes, int, bool]]) -> None:
    depacketizer = AudioDepacketizer(AacLayout(13, 3, 3), max_frame=200)
    for payload, timestamp, marker in packets:
        try:
            frames = depacketizer.push(payload, timestamp, marker)
        except AudioPayloadError:
            continue
        assert all(0 < len(frame) <= 200 or len(frame) <= len(payload) for _, frame in frames)


# --- RTCP --------------------------------------------------------------------------------


def sender_report(ssrc: int, unix: float, rtp: int) -> bytes:
    ntp = unix + 2_208_988_800
    seconds = int(ntp)
    fraction = int((ntp - seconds) * 2**32)
    return struct.pack("!BBHIIIIII", 0x80, 200, 6, ssrc, seconds, fraction, rtp, 10, 1000)


def test_sender_report_in_a_compound_packet() -> None:
    sdes = struct.pack("!BBHI", 0x81, 202, 2, 7) + b"\x01\x01x\x00"
    reports = parse_sender_reports(sender_report(7, 1_700_000_000.25, 1234) + sdes)
    assert len(reports) == 1
    assert reports[0].ssrc == 7
    assert reports[0].rtp_timestamp == 1234
    assert reports[0].unix_time == pytest.approx(1_700_000_000.25, abs=1e-6)


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_rtcp_parser_never_raises(data: bytes) -> None:
    for report in parse_sender_reports(data):
        assert isinstance(report, SenderReport)


def test_capture_clock_maps_and_handles_wrap() -> None:
    clock = CaptureClock(8000)
    assert clock.capture(100) is None
    clock.update(SenderReport(1, 1000.0, 2**32 - 8000))
    assert clock.capture(2**32 - 8000) == pytest.approx(1000.0)
    assert clock.capture(8000) == pytest.approx(1002.0)  # past the wrap
    assert clock.capture(2**32 - 16000) == pytest.approx(999.0)  # before the report


def test_aac_unfinished_fragment_is_abandoned_for_the_next_frame() -> None:
    depacketizer = AudioDepacketizer(HBR)
    assert depacketizer.push(aac_packet([6], [b"abc"]), 0, False) == []
    assert depacketizer.push(aac_packet([2], [b"ok"]), 1024, True) == [(1024, b"ok")]
    assert depacketizer.abandoned == 1


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(0, 127), st.integers(0, 2**16 - 1), st.binary(max_size=60))))
def test_audio_receiver_drops_what_it_cannot_use(packets: list[tuple[int, int, bytes]]) -> None:
    track = AudioTrack(97, "rtsp://cam/a", AudioFormat("AAC", 16000, 1, b"\x14\x08"), aac=HBR)
    assert track.format is not None
    emitted: list[AudioPacket] = []
    receiver = AudioReceiver(track, track.format, emitted.append, "cam")
    for pt, seq, payload in packets:
        header = struct.pack("!BBHII", 0x80, pt, seq, seq * 1024, 5)
        receiver.on_rtp(header + payload)
        receiver.on_rtp(payload)  # not RTP at all
        receiver.on_rtcp(payload)
    assert all(p.payload for p in emitted)


# --- MP4A-LATM ---------------------------------------------------------------------------


def test_latm_config_gives_the_audio_specific_config() -> None:
    section = (
        "m=audio 0 RTP/AVP 96\r\na=rtpmap:96 MP4A-LATM/16000\r\n"
        "a=fmtp:96 cpresent=0;config=40002810\r\n"
    )
    track = find_audio(sdp(section), BASE)
    assert track is not None and track.latm
    assert track.format == AudioFormat("AAC", 16000, 1, bytes.fromhex("1408"))
    assert audio_specific_config(bytes.fromhex("40002410")) == bytes.fromhex("1208")  # 24 kHz


@pytest.mark.parametrize(
    ("fmtp", "refusal"),
    [
        ("cpresent=1", "MP4A-LATM with in-band config: not supported"),
        ("cpresent=0;config=c0002810", "MP4A-LATM with an unusable config: not supported"),
        ("cpresent=0;config=40", "MP4A-LATM with an unusable config: not supported"),
    ],
)
def test_latm_refusals(fmtp: str, refusal: str) -> None:
    section = f"m=audio 0 RTP/AVP 96\r\na=rtpmap:96 MP4A-LATM/16000\r\na=fmtp:96 {fmtp}\r\n"
    track = find_audio(sdp(section), BASE)
    assert track is not None and track.refused == refusal


def test_latm_frames_and_fragments() -> None:
    depacketizer = AudioDepacketizer(latm=True)
    assert depacketizer.push(b"\x03abc", 100, True) == [(100, b"abc")]
    big = bytes(300)
    assert depacketizer.push(b"\xff\x2d" + big[:100], 1124, False) == []
    assert depacketizer.push(big[100:], 1124, True) == [(1124, big)]


@pytest.mark.parametrize("payload", [b"\xff\xff", b"\x09abc", b"\x00"])
def test_latm_garbage_is_a_clear_error(payload: bytes) -> None:
    with pytest.raises(AudioPayloadError):
        AudioDepacketizer(latm=True).push(payload, 0, True)


def test_latm_frame_over_the_cap_is_dropped() -> None:
    depacketizer = AudioDepacketizer(max_frame=100, latm=True)
    with pytest.raises(AudioPayloadError, match="over the cap"):
        for _ in range(10):
            depacketizer.push(b"\xff" * 50, 0, False)


@settings(max_examples=300)
@given(st.lists(st.tuples(st.binary(max_size=80), st.booleans())), st.binary(max_size=12))
def test_latm_fuzz(packets: list[tuple[bytes, bool]], config: bytes) -> None:
    with contextlib.suppress(ValueError):
        audio_specific_config(config)
    depacketizer = AudioDepacketizer(max_frame=200, latm=True)
    for payload, marker in packets:
        with contextlib.suppress(AudioPayloadError):
            depacketizer.push(payload, 0, marker)


def test_aac_lbr_headers() -> None:
    depacketizer = AudioDepacketizer(AacLayout(6, 2, 2))
    headers = bytes([(3 << 2) | 0, (2 << 2) | 0])  # sizes 3 and 2, 8 bits each
    frames = depacketizer.push(struct.pack("!H", 16) + headers + b"abcde", 0, True)
    assert frames == [(0, b"abc"), (1024, b"de")]

"""Pure parts of the viewer's audio: the offer's codecs, the shared payload lists, the
media clock behind sender reports, the pump's marker bit for audio."""

from __future__ import annotations

import time

from aiortc.sdp import SessionDescription
from pylibsrtp import Policy, Session

from gateway.media.audio import AudioFormat, AudioPacket
from gateway.sendpath.rtppump import NTP_UNIX_OFFSET_S, RtpPump, abs_send_time
from gateway.webrtc.audio import SharedFrames, offer_takes, offered_audio
from gateway.webrtc.avsync import MediaClock, ntp_of

OFFER = """v=0
o=- 1 2 IN IP4 127.0.0.1
s=-
t=0 0
m=video 9 UDP/TLS/RTP/SAVPF 96
a=mid:0
a=recvonly
a=rtpmap:96 H264/90000
m=audio 9 UDP/TLS/RTP/SAVPF 111 0
a=mid:1
a=recvonly
a=rtpmap:111 opus/48000/2
a=rtpmap:0 PCMU/8000
"""


def test_the_offer_must_list_the_cameras_codec_at_its_rate() -> None:
    offer = SessionDescription.parse(OFFER.replace("\n", "\r\n"))
    assert offered_audio(offer)
    assert offer_takes(offer, AudioFormat("OPUS", 48_000, 1))
    assert offer_takes(offer, AudioFormat("PCMU", 8000))
    assert not offer_takes(offer, AudioFormat("PCMA", 8000))
    assert not offer_takes(offer, AudioFormat("PCMU", 16_000))
    assert not offer_takes(offer, AudioFormat("AAC", 48_000))
    video_only = SessionDescription.parse(OFFER.split("m=audio")[0].replace("\n", "\r\n"))
    assert not offered_audio(video_only)


def test_every_viewer_gets_the_same_frame_per_packet() -> None:
    shared = SharedFrames()
    packet = AudioPacket(b"\x01\x02", 960, time.monotonic())
    first = shared.of(packet)
    assert first.payloads == [b"\x01\x02"] and first.timestamp == 960
    assert shared.of(packet) is first  # the same payload list for the send workers
    other = AudioPacket(b"\x01\x02", 1920, time.monotonic())
    assert shared.of(other).payloads is not first.payloads
    for n in range(200):  # bounded
        shared.of(AudioPacket(b"x", n, 0.0))
    assert len(shared._frames) <= 64


def test_the_media_clock_keeps_the_cameras_capture_timing() -> None:
    clock = MediaClock()
    now = time.monotonic()
    first = clock.wall(1000.0, now)  # captured at 1000 s on the camera's clock
    assert abs(first - time.time()) < 0.5  # near now
    # Later packets keep their capture spacing, whenever they arrive (to a microsecond:
    # floats of Unix time).
    assert abs(clock.wall(1000.040, now + 0.5) - first - 0.040) < 1e-6
    assert abs(clock.wall(999.980, now + 0.001) - first + 0.020) < 1e-6
    # Without capture times: arrival on the wall clock.
    assert abs(clock.wall(None, now) - time.time()) < 0.5


def test_ntp_of_unix_time() -> None:
    assert ntp_of(0.0) == NTP_UNIX_OFFSET_S << 32
    assert ntp_of(1.5) == (NTP_UNIX_OFFSET_S << 32) + (3 << 31)


def _pump(marker_last: bool) -> tuple[RtpPump, list[bytes]]:
    key = bytes(range(30))
    sender = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    receiver = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    pump = RtpPump(
        header=bytes(12),
        abs_send_time_offset=None,
        ssrc=1234,
        payload_type=111,
        sequence=7,
        marker_last=marker_last,
    )
    received: list[bytes] = []
    pump.connect(sender, lambda data: received.append(receiver.unprotect(data)))
    return pump, received


def test_audio_packets_carry_no_marker_bit_and_video_frames_end_with_one() -> None:
    audio, sent = _pump(marker_last=False)
    audio.send_frame([b"opus-1"], 960)
    audio.send_frame([b"opus-2"], 1920)
    assert [p[1] & 0x80 for p in sent] == [0, 0]
    assert [p[1] & 0x7F for p in sent] == [111, 111]
    assert [p[12:] for p in sent] == [b"opus-1", b"opus-2"]
    video, sent = _pump(marker_last=True)
    video.send_frame([b"a", b"b"], 3000)
    assert [p[1] & 0x80 for p in sent] == [0, 0x80]


def test_the_send_time_is_taken_once_per_packet_for_every_listener() -> None:
    shared = SharedFrames()
    packet = AudioPacket(b"\x01", 960, time.monotonic())
    first = shared.sending(packet)
    assert shared.sending(packet) is first  # the next listener: the same time, same frame
    frame, ntp, abs_time = first
    assert frame is shared.of(packet) and abs_time == abs_send_time(ntp)
    assert abs(ntp / (1 << 32) - NTP_UNIX_OFFSET_S - time.time()) < 1
    later = shared.sending(AudioPacket(b"\x02", 1920, time.monotonic()))
    assert later is not first and later[0].timestamp == 1920

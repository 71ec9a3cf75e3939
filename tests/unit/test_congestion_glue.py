"""The congestion watch on a real aiortc sender: its RTCP tap (gateway/compat/aiortc.py),
the verdicts it hands the feed, and the probe the pump sends (RTX copies)."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    pack_remb_fci,
)
from pylibsrtp import Policy, Session

from gateway.compat import aiortc as aiortc_compat
from gateway.compat.check import FAST, check_libraries
from gateway.sendpath.rtppump import PROBE_COPIES, RtpPump, Rtx
from gateway.webrtc.congestion import CongestionWatch
from gateway.webrtc.fastsend import FastSender


@dataclass
class Feed:
    current: str = "main"
    calls: list[tuple[bool, str]] = field(default_factory=list)

    def allow_main(self, allowed: bool, reason: str) -> None:
        self.calls.append((allowed, reason))
        self.current = "main" if allowed else "sub"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def sender() -> AsyncIterator[RTCRtpSender]:
    pc = RTCPeerConnection()
    try:
        yield pc.addTransceiver("video", direction="sendonly").sender
    finally:
        await pc.close()


def _rr(ssrc: int, fraction_lost: int, jitter: int = 450) -> RtcpRrPacket:
    block = RtcpReceiverInfo(
        ssrc=ssrc,
        fraction_lost=fraction_lost,
        packets_lost=0,
        highest_sequence=0,
        jitter=jitter,
        lsr=0,
        dlsr=0,
    )
    return RtcpRrPacket(ssrc=1, reports=[block])


def _remb(ssrc: int, bps: int) -> RtcpPsfbPacket:
    return RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(bps, [ssrc]))


async def test_the_tap_is_there_and_its_absence_costs_only_the_estimate(
    sender: RTCRtpSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert aiortc_compat.rtcp_tap_missing(sender) == []
    monkeypatch.delattr(RTCRtpSender, "_handle_rtcp_packet")
    assert aiortc_compat.rtcp_tap_missing(sender) == ["RTCRtpSender._handle_rtcp_packet()"]
    report = await check_libraries()
    assert report.send_path == FAST
    assert report.missing == ("aiortc: RTCRtpSender._handle_rtcp_packet()",)
    assert not CongestionWatch(sender, Feed(), main_kbps=lambda: 1, sub_kbps=lambda: 1).start()


async def test_reports_about_our_stream_feed_the_estimate_and_the_verdicts(
    sender: RTCRtpSender,
) -> None:
    feed, clock = Feed(), Clock()
    watch = CongestionWatch(
        sender, feed, main_kbps=lambda: 4000.0, sub_kbps=lambda: 500.0, clock=clock
    )
    assert watch.start()
    try:
        ssrc = aiortc_compat.ssrc(sender)
        await sender._handle_rtcp_packet(_rr(ssrc + 1, 255))  # about another stream
        assert watch.estimate_json() is None
        await sender._handle_rtcp_packet(_rr(ssrc, 0))
        await sender._handle_rtcp_packet(_remb(ssrc, 4_200_000))
        assert watch.estimate_json() == {
            "bitrate_kbps": 4200,
            "loss": 0.0,
            "rtt_ms": None,
            "jitter_ms": 5.0,
            "main_kbps": 4000,
            "sub_kbps": 500,
            "main_allowed": True,
        }
        for _ in range(3):  # ~30 % loss, a report a second
            clock.now += 1.0
            await sender._handle_rtcp_packet(_rr(ssrc, 77))
        assert feed.calls == [(False, "congestion")]
        assert watch.estimate_json()["main_allowed"] is False  # type: ignore[index]
        for _ in range(30):  # clean again; no pump: the up-switch is the trial
            clock.now += 1.0
            await sender._handle_rtcp_packet(_rr(ssrc, 0))
        assert feed.calls == [(False, "congestion"), (True, "recovered")]
        assert watch.probes == 0
    finally:
        watch.close()
    assert "_handle_rtcp_packet" not in sender.__dict__  # untapped


async def test_no_verdict_without_a_sub_stream_and_idle_streams_keep_their_rate(
    sender: RTCRtpSender,
) -> None:
    ssrc = aiortc_compat.ssrc(sender)
    for sub_kbps, verdicts in ((None, []), (0.0, [(False, "congestion")])):
        feed, clock = Feed(), Clock()
        watch = CongestionWatch(
            sender, feed, main_kbps=lambda: 0.0, sub_kbps=lambda s=sub_kbps: s, clock=clock
        )
        assert watch.start()
        try:
            for _ in range(4):
                clock.now += 1.0
                await sender._handle_rtcp_packet(_rr(ssrc, 128))
            assert feed.calls == verdicts
            estimate = watch.estimate_json()
            assert estimate is not None and estimate["main_kbps"] == 4000  # the guess
        finally:
            watch.close()


async def test_a_bad_packet_never_breaks_aiortcs_rtcp_handling(sender: RTCRtpSender) -> None:
    watch = CongestionWatch(sender, Feed(), main_kbps=lambda: 1, sub_kbps=lambda: 1)
    assert watch.start()
    try:
        garbage = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=b"REMB\x01")
        await sender._handle_rtcp_packet(garbage)
        assert watch.estimate_json() is None
    finally:
        watch.close()


def _pump(rtx: Rtx | None) -> tuple[RtpPump, list[bytes]]:
    key = bytes(range(30))
    outbound = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    inbound = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    pump = RtpPump(
        header=bytes([0x80]) + bytes(11),
        abs_send_time_offset=None,
        ssrc=1234,
        payload_type=102,
        sequence=65530,
        rtx=rtx,
    )
    received: list[bytes] = []
    pump.connect(outbound, lambda data: received.append(inbound.unprotect(data)))
    return pump, received


def test_a_probe_is_rtx_copies_of_the_latest_packets() -> None:
    pump, received = _pump(Rtx(payload_type=103, ssrc=5678))
    for frame in range(20):
        pump.send_frame([bytes([frame, i]) * 500 for i in range(3)], frame * 3600)
    sent, media = pump.sent_packets, list(received)
    assert pump.send_probe(10_000) >= 10_000
    copies = received[len(media) :]
    assert len(copies) == pump.probe_packets == 10  # 1000-byte payloads
    assert pump.sent_packets == sent and pump.retransmitted == 0
    for copy in copies:
        assert copy[1] & 0x7F == 103 and struct.unpack("!I", copy[8:12])[0] == 5678
        original = struct.unpack("!H", copy[12:14])[0]
        assert (pump.sequence - original) & 0xFFFF <= PROBE_COPIES  # only the latest
        assert any(
            struct.unpack("!H", m[2:4])[0] == original and m[12:] == copy[14:] for m in media
        )


def test_no_probe_without_rtx() -> None:
    pump, received = _pump(None)
    pump.send_frame([b"x" * 100], 0)
    assert pump.send_probe(10_000) == 0 and len(received) == 1


async def test_after_a_switch_nacks_for_the_stream_left_go_unanswered(
    sender: RTCRtpSender,
) -> None:
    """The new stream starts at a keyframe: retransmitting the old one's packets would
    only crowd a slow link (the switch away from the main stream is made because it is)."""

    async def no_frames() -> None:
        return None

    pump, received = _pump(Rtx(payload_type=103, ssrc=5678))
    loop = FastSender(sender, no_frames)
    loop.pump = pump
    for frame in range(4):  # 12 packets, the sequence numbers wrap
        pump.send_frame([bytes([frame]) * 100] * 3, frame * 3600)
    left = [(pump.sequence - back) & 0xFFFF for back in (1, 12)]
    await loop.retransmit(left[0])
    assert pump.retransmitted == 1  # before any switch: answered

    loop.stream_switched()
    pump.send_frame([b"new" * 100] * 2, 20_000)
    for sequence in left:
        await loop.retransmit(sequence)
    assert pump.retransmitted == 1
    await loop.retransmit((pump.sequence - 1) & 0xFFFF)
    assert pump.retransmitted == 2 and received[-1][14:] == b"new" * 100

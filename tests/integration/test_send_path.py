"""camgate's own RTP send loop (gateway/webrtc/fastsend.py) keeps what aiortc's gave:
packets lost on the way are asked for again (NACK) and resent (RTX), sender reports and
stats count what was sent, and every viewer gets whole pictures."""

from __future__ import annotations

import pytest

from gateway.sendpath.udpbatch import BatchSender
from gateway.webrtc import fastsend
from tests.conftest import WhepViewerFactory
from tests.integration.conftest import GatewayFactory
from tests.rig.wait import wait_until

SMALL = {"width": 320, "height": 240, "fps": 30, "bitrate_kbps": 800, "gop_seconds": 4}


async def test_lost_packets_are_recovered_by_nack_and_rtx(
    start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    gw = await start_gateway(cameras=[{"name": "cam", "source": "demo", "demo": SMALL}])
    lossy = await whep_viewer(gw.base_url, "cam")
    clean = await whep_viewer(gw.base_url, "cam")
    await lossy.wait_frames(5, timeout=30)
    dropped = lossy.drop_packets(every=25)
    (session,) = [s for s in gw.gateway.sessions._sessions.values() if s.id in lossy.location]  # type: ignore[operator]
    loop = session.send_loop
    assert loop is not None, "camgate's send loop is not in use"
    start = lossy.frames_received
    await wait_until(lambda: len(dropped) >= 20, timeout=60)
    # Every frame still arrives whole: the lost packets came back as retransmissions.
    await lossy.wait_frames(start + 150, timeout=60)
    await wait_until(lambda: loop.retransmitted >= len(dropped) // 2, timeout=30)
    assert loop.retransmitted > 0
    assert clean.frames_received >= start + 100  # the other viewer never noticed
    gap = clean.frames_received - lossy.frames_received
    assert abs(gap) < 30, gap  # no lasting loss for the lossy viewer


async def test_sender_reports_and_stats_count_what_was_sent(
    start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    gw = await start_gateway(cameras=[{"name": "cam", "source": "demo", "demo": SMALL}])
    viewer = await whep_viewer(gw.base_url, "cam")
    await viewer.wait_frames(60, timeout=30)
    (session,) = gw.gateway.sessions._sessions.values()
    stats = await session.pc.getStats()
    outbound = [s for s in stats.values() if s.type == "outbound-rtp"]
    assert outbound and outbound[0].packetsSent >= session.send_loop.sent_packets > 100  # type: ignore[union-attr]
    assert outbound[0].bytesSent > 10_000
    # The viewer's receiver saw sender reports (its RTCP thread reads them): remote stats.
    remote = await viewer.pc.getStats()
    inbound = [s for s in remote.values() if s.type == "inbound-rtp"]
    assert inbound and inbound[0].packetsReceived > 100


async def test_every_packet_goes_out_in_sendmmsg_batches(
    start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    gw = await start_gateway(cameras=[{"name": "cam", "source": "demo", "demo": SMALL}])
    viewer = await whep_viewer(gw.base_url, "cam")
    await viewer.wait_frames(60, timeout=30)
    (session,) = gw.gateway.sessions._sessions.values()
    loop = session.send_loop
    assert loop is not None and loop.sent_packets > 100
    assert loop.batched_packets == loop.sent_packets


async def test_what_the_socket_cannot_take_now_is_queued_in_order(
    start_gateway: GatewayFactory,
    whep_viewer: WhepViewerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full socket buffer (a slow link's qdisc): sendmmsg takes part of a batch, the
    rest goes through asyncio's transport, and the viewer still gets whole pictures."""
    partial_sends = 0

    def send_half(self: BatchSender, fd: int, count: int) -> int:
        nonlocal partial_sends
        partial_sends += 1
        return real_send(self, fd, count // 2)

    real_send = BatchSender.send
    monkeypatch.setattr(BatchSender, "send", send_half)
    gw = await start_gateway(cameras=[{"name": "cam", "source": "demo", "demo": SMALL}])
    viewer = await whep_viewer(gw.base_url, "cam")
    await viewer.wait_frames(90, timeout=30)
    assert partial_sends > 60


async def test_without_sendmmsg_packets_go_one_by_one(
    start_gateway: GatewayFactory,
    whep_viewer: WhepViewerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fastsend, "batch_sender", lambda: None)
    gw = await start_gateway(cameras=[{"name": "cam", "source": "demo", "demo": SMALL}])
    viewer = await whep_viewer(gw.base_url, "cam")
    await viewer.wait_frames(60, timeout=30)
    (session,) = gw.gateway.sessions._sessions.values()
    loop = session.send_loop
    assert loop is not None and loop.sent_packets > 100 and loop.batched_packets == 0

"""Send workers (gateway/fanout/): viewers' RTP sent from other processes, with the
peer connections, NACK, stats and PTZ still in the gateway."""

from __future__ import annotations

import os
import signal

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from gateway.fanout.pool import SendWorkerPool
from tests.conftest import WhepViewerFactory
from tests.integration.conftest import GatewayFactory, RunningGateway
from tests.rig.wait import wait_until

SMALL = {"width": 320, "height": 240, "fps": 30, "bitrate_kbps": 800, "gop_seconds": 4}
CAMERA = [{"name": "cam", "source": "demo", "demo": SMALL}]


def _webrtc(send_workers: int) -> dict[str, object]:
    return {"candidates": {"addresses": ["127.0.0.1"]}, "send_workers": send_workers}


def _pool(gw: RunningGateway) -> SendWorkerPool:
    pool = gw.gateway.send_workers
    assert pool is not None
    return pool


async def test_viewers_are_spread_over_the_workers_and_get_every_frame(
    start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    gw = await start_gateway(cameras=CAMERA, webrtc=_webrtc(2))
    pool = _pool(gw)
    assert len(pool.pids) == 2 and os.getpid() not in pool.pids
    viewers = [await whep_viewer(gw.base_url, "cam") for _ in range(4)]
    for viewer in viewers:
        await viewer.wait_frames(60, timeout=30)
    assert sorted(len(link.pumps) for link in pool.links if link) == [2, 2]
    sessions = list(gw.gateway.sessions._sessions.values())
    # The workers report what they sent: every packet in sendmmsg batches.
    await wait_until(
        lambda: all(s.send_loop and s.send_loop.sent_packets > 100 for s in sessions), timeout=30
    )
    for session in sessions:
        assert session.send_loop is not None
        assert session.send_loop.batched_packets == session.send_loop.sent_packets
    # aiortc's sender reports and stats come from those reports.
    stats = await sessions[0].pc.getStats()
    outbound = [s for s in stats.values() if s.type == "outbound-rtp"]
    assert outbound and outbound[0].packetsSent > 100
    # /metrics shows the workers' own processes.
    async with aiohttp.ClientSession() as http, http.get(gw.base_url + "/metrics") as response:
        families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    viewers = {s.labels["worker"]: s.value for s in families["camgate_send_worker_viewers"].samples}
    assert viewers == {"0": 2, "1": 2}
    assert all(s.value > 0 for s in families["camgate_send_worker_cpu_seconds"].samples)
    skipped = families["camgate_send_worker_skipped_frames"].samples
    assert sorted(s.labels["worker"] for s in skipped) == ["0", "1"]


async def test_lost_packets_are_resent_by_the_worker(
    start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    gw = await start_gateway(cameras=CAMERA, webrtc=_webrtc(1))
    lossy = await whep_viewer(gw.base_url, "cam")
    await lossy.wait_frames(5, timeout=30)
    dropped = lossy.drop_packets(every=25)
    (session,) = gw.gateway.sessions._sessions.values()
    loop = session.send_loop
    assert loop is not None
    start = lossy.frames_received
    await wait_until(lambda: len(dropped) >= 20, timeout=60)
    await lossy.wait_frames(start + 150, timeout=60)
    await wait_until(lambda: loop.retransmitted >= len(dropped) // 2, timeout=30)


async def test_a_congestion_probe_goes_out_from_the_worker(
    start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    """The congestion watch probes a worker's viewer as it probes one served here: RTX
    copies of the latest packets, sent by the worker (docs/streams.md)."""
    gw = await start_gateway(cameras=CAMERA, webrtc=_webrtc(1))
    viewer = await whep_viewer(gw.base_url, "cam")
    await viewer.wait_frames(5, timeout=30)
    (session,) = gw.gateway.sessions._sessions.values()
    assert session.send_loop is not None and session.send_loop.pump is not None
    media = {ssrc for _, _, ssrc in viewer.rtp_log}
    assert len(media) == 1
    assert session.send_loop.pump.send_probe(8_000) == 8_000  # type: ignore[attr-defined]
    await wait_until(lambda: {ssrc for _, _, ssrc in viewer.rtp_log} - media, timeout=30)
    await viewer.wait_frames(viewer.frames_received + 30, timeout=30)  # still playing


async def test_a_worker_that_dies_is_restarted_and_only_its_viewers_are_closed(
    start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    gw = await start_gateway(cameras=CAMERA, webrtc=_webrtc(2))
    pool = _pool(gw)
    first = await whep_viewer(gw.base_url, "cam")
    second = await whep_viewer(gw.base_url, "cam")
    await first.wait_frames(30, timeout=30)
    await second.wait_frames(30, timeout=30)
    victim = next(link for link in pool.links if link and link.pumps)
    survivor = next(link for link in pool.links if link and link is not victim)
    assert len(survivor.pumps) == 1
    os.kill(victim.process.pid, signal.SIGKILL)
    # The dead worker's viewer is closed; the other one keeps playing.
    await wait_until(lambda: len(gw.gateway.sessions) == 1, timeout=30)
    (remaining,) = gw.gateway.sessions._sessions.values()
    playing = first if remaining.id in first.location else second
    mark = playing.frames_received
    await playing.wait_frames(mark + 60, timeout=30)
    # A new worker takes the next viewer.
    await wait_until(lambda: len(pool.pids) == 2, timeout=30)
    assert victim.process.pid not in pool.pids
    newcomer = await whep_viewer(gw.base_url, "cam")
    await newcomer.wait_frames(30, timeout=30)

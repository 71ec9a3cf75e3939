"""Faults real homes produce, each end to end: a camera changing resolution mid-stream or
sending truncated RTP, a viewer that vanishes without saying goodbye, junk WHEP bodies, and
100 viewer sessions in a row without a leak. (Camera restarts, junk NAL units, broker
restarts and hanging ONVIF cameras have their tests beside their features.)"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from pathlib import Path

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.webrtc.session import WhepSession
from tests.conftest import WhepViewerFactory
from tests.integration.conftest import GatewayFactory
from tests.rig.replay_camera import ReplayCamera, encode_pictures
from tests.rig.wait import wait_until
from tests.rig.whep_client import WhepViewer

SMALL = encode_pictures(320, 240, frames=60, gop=30)
LARGE = encode_pictures(640, 360, frames=60, gop=30)


async def test_resolution_change_mid_stream_reaches_the_viewer(
    start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    async with ReplayCamera(segments=[SMALL, LARGE]) as camera:
        url = f"rtsp://127.0.0.1:{camera.port}/cam"
        gw = await start_gateway(cameras=[{"name": "cam", "source": url, "preload": True}])
        viewer = await whep_viewer(gw.base_url, "cam", decode=True)
        await wait_until(lambda: any(f.width == 320 for f in viewer.frames), timeout=30)
        await wait_until(lambda: any(f.width == 640 for f in viewer.frames), timeout=30)
        await wait_until(lambda: viewer.frames[-1].width == 320, timeout=30)  # and back
        sizes = {(f.width, f.height) for f in viewer.frames}
        assert sizes == {(320, 240), (640, 360)}
        hub = gw.hub("cam")
        assert hub.state == "live" and hub.reconnects == 0


async def test_truncated_rtp_packets_are_dropped_and_video_goes_on(
    start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    async with (
        ReplayCamera(segments=[SMALL], truncate_every=23) as broken,
        ReplayCamera(segments=[LARGE]) as good,
    ):
        cameras = [
            {"name": "broken", "source": f"rtsp://127.0.0.1:{broken.port}/cam"},
            {"name": "good", "source": f"rtsp://127.0.0.1:{good.port}/cam"},
        ]
        gw = await start_gateway(cameras=cameras)
        damaged = await whep_viewer(gw.base_url, "broken", decode=True)
        fine = await whep_viewer(gw.base_url, "good", decode=True)
        await damaged.wait_frames(60, timeout=60)  # whole pictures keep coming
        await fine.wait_frames(60, timeout=60)
        assert broken.truncated > 5
        assert gw.hub("broken").state == "live" and gw.hub("broken").reconnects == 0
        assert {(f.width, f.height) for f in damaged.frames} == {(320, 240)}


async def test_a_viewer_that_vanishes_is_cleaned_up_within_the_consent_timeout(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await start_gateway()
    hub = gw.hub("demo")
    # A viewer in its own process, killed -9: no DTLS close, no WHEP DELETE.
    script = (
        "import asyncio, sys\n"
        "from tests.rig.whep_client import WhepViewer\n"
        "async def main():\n"
        f"    v = await WhepViewer({gw.base_url!r}, 'demo').start()\n"
        "    await v.wait_frames(5, timeout=30)\n"
        "    print('playing', flush=True)\n"
        "    await asyncio.Event().wait()\n"
        "asyncio.run(main())\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE, cwd=os.getcwd()
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        assert line.strip() == b"playing"
        assert len(gw.gateway.sessions) == 1 and hub.viewers == 1
        process.send_signal(signal.SIGKILL)
        await process.wait()
        # ICE consent freshness fails after ~30 s of silence: the session must go then.
        await wait_until(lambda: len(gw.gateway.sessions) == 0, timeout=90)
        assert hub.viewers == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def live_objects(kind: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, kind))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_a_hundred_sessions_leave_nothing_behind(start_gateway: GatewayFactory) -> None:
    from aiortc import RTCPeerConnection

    gw = await start_gateway()
    hub = gw.hub("demo")
    await hub.wait_live(30)

    async def one_session() -> None:
        viewer = WhepViewer(gw.base_url, "demo")
        try:
            await viewer.start()
            await viewer.wait_frames(1, timeout=30)
        finally:
            await viewer.close()

    for _ in range(5):  # warm up: imports, codec registration, first-use caches
        await one_session()
    await wait_until(lambda: len(gw.gateway.sessions) == 0, timeout=30)
    tasks, fds = len(asyncio.all_tasks()), open_fds()
    # What earlier tests left in this process (aiohttp caches their apps) is not ours.
    sessions, peers = live_objects(WhepSession), live_objects(RTCPeerConnection)
    for _ in range(100):
        await one_session()
    await wait_until(lambda: len(gw.gateway.sessions) == 0 and hub.viewers == 0, timeout=30)
    await wait_until(lambda: len(asyncio.all_tasks()) <= tasks, timeout=30)
    await wait_until(lambda: open_fds() <= fds, timeout=30)
    assert live_objects(WhepSession) <= sessions
    assert live_objects(RTCPeerConnection) <= peers  # the gateway's and the viewers'


junk_offers = st.one_of(
    st.text(max_size=500),
    st.binary(max_size=500).map(lambda b: b.decode("latin-1")),
    st.sampled_from(
        ["", "v=0", "v=0\r\nm=audio 9 RTP/AVP 0\r\n", "m=video 9 UDP/TLS/RTP/SAVPF 96"]
    ),
)


def draw(strategy: st.SearchStrategy[str], count: int) -> list[str]:
    drawn: list[str] = []

    @settings(
        max_examples=count, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(strategy)
    def collect(value: str) -> None:
        drawn.append(value)

    collect()
    return drawn


async def test_junk_whep_bodies_get_client_errors(start_gateway: GatewayFactory) -> None:
    gw = await start_gateway()
    viewer = WhepViewer(gw.base_url, "demo")
    await viewer.start()
    await viewer.wait_frames(1, timeout=30)
    whep = gw.base_url + "/api/cameras/demo/whep"
    assert viewer.location is not None
    session_url = viewer.location
    async with aiohttp.ClientSession() as http:
        for body in draw(junk_offers, 150):
            async with http.post(
                whep,
                data=body.encode("utf-8", "surrogatepass"),
                headers={"Content-Type": "application/sdp"},
            ) as response:
                assert 400 <= response.status < 500, (response.status, body[:80])
            async with http.patch(
                session_url,
                data=body.encode("utf-8", "surrogatepass"),
                headers={"Content-Type": "application/trickle-ice-sdpfrag"},
            ) as response:
                assert response.status in (204, 400, 413, 422), (response.status, body[:80])
        async with http.get(gw.base_url + "/api/health") as response:
            assert response.status == 200
    frames = viewer.frames_received
    await viewer.wait_frames(frames + 10, timeout=30)  # the real viewer never noticed
    await viewer.close()

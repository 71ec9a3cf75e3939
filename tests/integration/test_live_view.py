"""Live view end to end: GStreamer RTSP camera -> camgate -> aiortc viewers.

Each quirk test reproduces a real camera habit with the real RTSP server and fails
without the gateway's fix (see docs/webrtc.md, "Stream normalisation").
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time

import aiohttp
import pytest

from gateway.media.accessunit import AccessUnit
from gateway.media.h264 import NAL_IDR, NAL_PPS, NAL_SPS, nal_type
from gateway.subscription import SubscriptionClosed
from tests.conftest import RtspServerFactory, WhepViewerFactory
from tests.integration.conftest import GatewayFactory, RunningGateway
from tests.rig.streams import testsrc_h264
from tests.rig.wait import wait_until

pytestmark = pytest.mark.rtsp


async def camera_and_gateway(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, launch: str, **camera: object
) -> tuple[object, RunningGateway]:
    server = await rtsp_server({"/cam": launch})
    gw = await start_gateway(cameras=[{"name": "cam", "source": server.url("/cam"), **camera}])
    return server, gw


def record_units(gw: RunningGateway) -> list[AccessUnit]:
    """Every picture the hub fans out to viewers (after normalising), via a subscription
    of its own that a background task drains."""
    hub = gw.hub("cam")
    sub = hub.subscribe()
    seen: list[AccessUnit] = []

    async def drain() -> None:
        with contextlib.suppress(SubscriptionClosed):
            while True:
                seen.append((await sub.get()).unit)

    task = asyncio.get_running_loop().create_task(drain())
    _recorders.append(task)
    return seen


_recorders: list[asyncio.Task[None]] = []


async def test_one_upstream_session_serves_every_viewer(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    server, gw = await camera_and_gateway(rtsp_server, start_gateway, testsrc_h264())
    viewers = [await whep_viewer(gw.base_url, "cam") for _ in range(3)]
    viewers.append(await whep_viewer(gw.base_url, "cam", decode=True))
    for viewer in viewers:
        await viewer.wait_frames(30, timeout=30)
    status = await server.status()
    assert status["sessions"] == 1
    assert server.clients_connected_total == 1
    assert gw.hub("cam").viewers == 4
    decoded = viewers[-1].frames[-1]
    assert (decoded.width, decoded.height) == (640, 360)


async def test_first_keyframe_is_delivered_on_a_cold_start(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    """Quirk 1: the camera's first picture (the IDR) must not be lost or delayed.

    With a 10 s keyframe interval a gateway that dropped or mis-stamped the first
    keyframe would make the viewer wait for the second one."""
    _, gw = await camera_and_gateway(rtsp_server, start_gateway, testsrc_h264(gop=300))
    viewer = await whep_viewer(gw.base_url, "cam", decode=True)  # camera starts now
    await viewer.wait_frames(1, timeout=30)
    assert gw.hub("cam").keyframes_received == 1
    assert viewer.frames[0].width == 640


async def test_multi_slice_pictures_travel_whole(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    """Quirk 2: four slices per picture (and SPS/PPS before each IDR slice) arrive as one
    frame per picture with one RTP timestamp, not four half-frames."""
    _, gw = await camera_and_gateway(
        rtsp_server, start_gateway, testsrc_h264(slices=4, gop=30), preload=True
    )
    units = record_units(gw)
    viewer = await whep_viewer(gw.base_url, "cam")
    decoder = await whep_viewer(gw.base_url, "cam", decode=True)
    await viewer.wait_frames(60, timeout=30)
    await decoder.wait_frames(30, timeout=30)
    slice_counts = {sum(1 for n in u.nals if nal_type(n) in (1, 5)) for u in units}
    assert slice_counts == {4}
    stamps = [f.timestamp for f in viewer.frames]
    assert len(set(stamps)) == len(stamps)  # one frame per picture
    steps = {b - a for a, b in itertools.pairwise(stamps)}
    # 30 fps at 90 kHz, or one tick apart in the cached-GOP burst: never a half-frame.
    assert steps <= {1, 3000}, steps
    assert all(f.width == 640 and f.height == 360 for f in decoder.frames)


async def test_parameter_sets_only_in_sdp_are_injected(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    """Quirk 3: SPS/PPS only in sprop-parameter-sets: every IDR the viewers get starts
    with them, so a decoder can start; without injection nothing decodes."""
    _, gw = await camera_and_gateway(
        rtsp_server, start_gateway, testsrc_h264(config_interval=0, gop=30), preload=True
    )
    units = record_units(gw)
    viewer = await whep_viewer(gw.base_url, "cam", decode=True)
    await viewer.wait_frames(45, timeout=30)
    keyframes = [u for u in units if u.keyframe]
    assert keyframes
    for unit in keyframes:
        types = [nal_type(n) for n in unit.nals]
        assert types.index(NAL_SPS) < types.index(NAL_PPS) < types.index(NAL_IDR)
    assert viewer.frames[-1].width == 640


async def test_new_viewer_does_not_wait_for_the_next_keyframe(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    """Quirk 4: with a 10 s GOP a viewer joining mid-GOP decodes a picture long before
    the camera's next IDR, because the hub serves the cached GOP."""
    _, gw = await camera_and_gateway(
        rtsp_server, start_gateway, testsrc_h264(gop=300), preload=True
    )
    hub = gw.hub("cam")
    await hub.wait_live(30)
    await wait_until(lambda: hub.status().gop_frames >= 30)  # ~1 s into the GOP
    keyframes = hub.keyframes_received
    viewer = await whep_viewer(gw.base_url, "cam", decode=True)
    await viewer.wait_frames(5, timeout=8)
    assert hub.keyframes_received == keyframes, "the viewer waited for the next IDR"


async def test_join_burst_keeps_the_api_responsive(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    """Quirk 5: 16 viewers joining at once (GOP cache bursts included) must not freeze
    the event loop: the API keeps answering and every viewer gets video."""
    _, gw = await camera_and_gateway(
        rtsp_server, start_gateway, testsrc_h264(gop=120), preload=True
    )
    hub = gw.hub("cam")
    await hub.wait_live(30)
    await wait_until(lambda: hub.status().gop_frames >= 60)
    slowest = 0.0
    stop = asyncio.Event()

    async def probe_api() -> None:
        nonlocal slowest
        async with aiohttp.ClientSession(gw.base_url) as http:
            while not stop.is_set():
                started = time.monotonic()
                async with http.get("/api/health") as r:
                    assert r.status == 200
                slowest = max(slowest, time.monotonic() - started)
                await asyncio.sleep(0.05)

    prober = asyncio.create_task(probe_api())
    viewers = await asyncio.gather(*(whep_viewer(gw.base_url, "cam") for _ in range(16)))
    await asyncio.gather(*(v.wait_frames(90, timeout=60) for v in viewers))
    stop.set()
    await prober
    # Without per-frame yielding this was 20-30 s; allow a loaded CI machine plenty.
    assert slowest < 3.0, f"API stalled {slowest:.1f} s during the join burst"


async def test_b_frames_are_reported(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory
) -> None:
    """Quirk 6: WebRTC has no B-frames; the API says so and how to fix it."""
    _, gw = await camera_and_gateway(
        rtsp_server, start_gateway, testsrc_h264(profile="main", bframes=2), preload=True
    )
    hub = gw.hub("cam")
    await hub.wait_live(30)
    await wait_until(lambda: hub.status().warning is not None)
    assert "B-frames" in hub.status().warning


async def test_camera_restart_resumes_video_for_connected_viewers(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    server, gw = await camera_and_gateway(rtsp_server, start_gateway, testsrc_h264(gop=30))
    hub = gw.hub("cam")
    viewer = await whep_viewer(gw.base_url, "cam", decode=True)
    await viewer.wait_frames(10, timeout=30)
    await server.stop()
    await wait_until(lambda: hub.state.value in ("reconnecting", "offline"), timeout=30)
    before = viewer.frames_received
    await server.start()
    restarted = time.monotonic()
    await viewer.wait_frames(before + 10, timeout=30)
    resumed_after = viewer.frames[before].at - restarted
    logging.getLogger("test").info("video resumed %.2f s after the camera came back", resumed_after)
    assert viewer.connection_state == "connected"
    assert hub.state.value == "live" and hub.reconnects >= 1
    assert viewer.frames[-1].width == 640


async def test_credentials_never_reach_logs_api_or_page(
    rtsp_server: RtspServerFactory,
    start_gateway: GatewayFactory,
    whep_viewer: WhepViewerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    password = "Pa55-w0rd-xyz"
    server = await rtsp_server({"/cam": testsrc_h264()}, user="admin", password=password)
    caplog.set_level(logging.DEBUG)
    gw = await start_gateway(
        cameras=[
            {"name": "cam", "source": server.url("/cam"), "preload": True},
            {
                "name": "wrong",
                "source": server.url("/cam").replace(password, "nope-" + password[::-1]),
                "preload": True,
            },
        ]
    )
    viewer = await whep_viewer(gw.base_url, "cam")
    await viewer.wait_frames(10, timeout=30)
    await wait_until(lambda: gw.hub("wrong").error is not None)
    async with aiohttp.ClientSession(gw.base_url) as http:
        bodies = [
            await (await http.get(p)).text()
            for p in ("/api/cameras", "/api/cameras/cam", "/api/cameras/wrong", "/")
        ]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for text in [*bodies, logged, gw.hub("wrong").error or ""]:
        assert password not in text and password[::-1] not in text
    assert "cam" in bodies[0]

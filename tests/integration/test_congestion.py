"""A viewer behind a slow link (tests/rig/shaping.py: tbf on a veth into its own
namespace) and a ~4 Mbit/s GStreamer camera: the congestion watch on its video sender
(gateway/webrtc/congestion.py) reads the real aiortc viewer's reports and says so.

The feed here is a recording one (its `current` follows the verdicts as the viewer's
feed would in full view, auto), so the stream on the wire stays the camera's one stream:
after the verdict the link stays congested until the limit is lifted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.async_api import Browser

from gateway.compat.check import FORCE_ENV
from gateway.webrtc.congestion import CongestionWatch
from tests.conftest import RtspServerFactory
from tests.integration.conftest import GatewayFactory, RunningGateway
from tests.integration.test_viewer_browser import open_viewer
from tests.rig import prereq
from tests.rig.net import free_port
from tests.rig.netns import NetNamespace
from tests.rig.shaping import (
    GATEWAY_ADDRESS,
    RecordingFeed,
    ShapedLink,
    ShapedViewer,
    shaped_link,
)
from tests.rig.streams import testsrc_h264

FPS = 25
# Noise does not compress: x264 spends the whole bitrate on it, as on a busy scene.
CAMERA = testsrc_h264(
    width=640, height=360, fps=FPS, gop=2 * FPS, pattern="snow", bitrate_kbps=4000
)
SUB_KBPS = 500.0  # what the sub stream would need (this camera has only its main one)
LINK_KBIT = 1000


@dataclass
class Rig:
    link: ShapedLink
    gw: RunningGateway
    viewer: ShapedViewer
    feed: RecordingFeed
    watch: CongestionWatch
    trace: list[tuple[float, Any]]


@pytest.fixture(params=["fast", "fallback"])
async def rig(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    netns: NetNamespace | None,
    rtsp_server: RtspServerFactory,
    start_gateway: GatewayFactory,
) -> AsyncIterator[Rig]:
    """Both send paths: camgate's own RTP loop, and aiortc's (CAMGATE_SEND_PATH)."""
    if request.param == "fallback":
        monkeypatch.setenv(FORCE_ENV, "fallback")
    if netns is None:
        prereq.missing("the shaped link needs network namespaces (root)")
    with shaped_link() as link:
        server = await rtsp_server({"/cam": CAMERA})
        port = free_port()
        gw = await start_gateway(
            cameras=[{"name": "cam", "source": server.url("/cam"), "preload": True}],
            listen=f"{GATEWAY_ADDRESS}:{port}",
            webrtc={"candidates": {"addresses": [GATEWAY_ADDRESS]}},
        )
        await gw.hub("cam").wait_live(30)
        viewer = await ShapedViewer(link, f"http://{GATEWAY_ADDRESS}:{port}", "cam", FPS).start()
        try:
            await viewer.wait("frames", lambda r: r["frames"] >= 2 * FPS, 60)
            (session,) = gw.gateway.sessions
            sender = next(t.sender for t in session.pc.getTransceivers() if t.kind == "video")
            feed = RecordingFeed()
            hub = gw.hub("cam")
            watch = CongestionWatch(
                sender,
                feed,
                main_kbps=lambda: hub.status().bitrate_kbps or None,
                sub_kbps=lambda: SUB_KBPS,
                probe_sender=lambda: session.send_loop.pump if session.send_loop else None,
            )
            assert watch.start()
            trace: list[tuple[float, Any]] = []
            sampler = asyncio.create_task(_sample(watch, viewer, trace))
            try:
                yield Rig(link, gw, viewer, feed, watch, trace)
            finally:
                sampler.cancel()
                watch.close()
        finally:
            await viewer.close()


async def _sample(watch: CongestionWatch, viewer: ShapedViewer, trace: list[Any]) -> None:
    """What the watch and the viewer saw, once a second (for failure messages)."""
    while True:
        trace.append((round(time.monotonic(), 1), watch.estimate_json(), viewer.latest))
        await asyncio.sleep(1)


# On the fast path the whole chain (the last test) does this with the real feed; here the
# tap on aiortc's own send loop, and its trial in place of a probe.
@pytest.mark.parametrize("rig", ["fallback"], indirect=True)
async def test_slow_link_refuses_the_main_stream_and_a_healed_one_gets_it_back(rig: Rig) -> None:
    def trace() -> Any:
        return {"calls": rig.feed.calls, "probes": rig.watch.probes, "trace": rig.trace[-20:]}

    # A clean link: reports come in, the estimate says so, no verdict.
    await rig.viewer.wait("more frames", lambda r: r["frames"] >= 4 * FPS, 60)
    estimate = rig.watch.estimate_json()
    assert estimate is not None and estimate["main_allowed"] is True, trace()
    assert estimate["loss"] <= 0.01 and estimate["main_kbps"] > 2000, trace()
    assert rig.feed.calls == [], trace()

    rig.link.apply(rate_kbit=LINK_KBIT)
    limited_at = time.monotonic()
    await rig.feed.wait_call(1, 60, trace)
    at, allowed, reason = rig.feed.calls[0]
    assert (allowed, reason) == (False, "congestion"), trace()
    print(f"verdict after {at - limited_at:.1f} s under {LINK_KBIT} kbit/s")

    rig.link.lift()
    lifted_at = time.monotonic()
    await rig.feed.wait_call(2, 90, trace)
    at, allowed, reason = rig.feed.calls[1]
    assert (allowed, reason) == (True, "recovered"), trace()
    # The fast path probed before saying so; on aiortc's own loop the up-switch is the trial.
    assert (rig.watch.probes >= 1) == (rig.gw.gateway.sessions.send_workers is None and _fast(rig))
    print(f"recovered {at - lifted_at:.1f} s after the limit was lifted")


def _fast(rig: Rig) -> bool:
    (session,) = rig.gw.gateway.sessions
    return session.send_loop is not None


@pytest.mark.parametrize("rig", ["fast"], indirect=True)  # the tap is the same on both
async def test_a_good_link_gets_no_verdict(rig: Rig) -> None:
    """Well past the policy's clean spell and REMB settling time: nothing changes."""
    await rig.viewer.wait("frames", lambda r: r["frames"] >= 30 * FPS, 120)
    assert rig.watch.rtcp_packets > 20
    assert rig.feed.calls == [], (rig.feed.calls, rig.trace)
    assert rig.watch.probes == 0 and rig.watch.estimate_json() is not None


SUB_CAMERA = testsrc_h264(
    width=320, height=180, fps=FPS, gop=2 * FPS, pattern="snow", bitrate_kbps=400
)


@pytest.mark.timeout(420)  # a 30 s window on the sub stream between two switches
async def test_a_viewer_on_a_slow_link_gets_the_sub_stream_and_the_main_one_back(
    netns: NetNamespace | None, rtsp_server: RtspServerFactory, start_gateway: GatewayFactory
) -> None:
    """The whole chain: the viewer's status messages say it moved to the sub stream, it
    loses < 1 % of its frames there while the link stays slow (probes included), and it
    gets the main stream back once the link is lifted."""
    if netns is None:
        prereq.missing("the shaped link needs network namespaces (root)")
    with shaped_link() as link:
        server = await rtsp_server({"/main": CAMERA, "/sub": SUB_CAMERA})
        port = free_port()
        camera = {"name": "cam", "source": server.url("/main"), "substream": server.url("/sub")}
        gw = await start_gateway(
            cameras=[{**camera, "preload": True}],
            listen=f"{GATEWAY_ADDRESS}:{port}",
            webrtc={"candidates": {"addresses": [GATEWAY_ADDRESS]}},
        )
        await gw.hub("cam").wait_live(30)
        viewer = await ShapedViewer(link, f"http://{GATEWAY_ADDRESS}:{port}", "cam", FPS).start()
        try:
            await viewer.wait(
                "main stream", lambda r: (r["stream"] or {}).get("current") == "main", 60
            )
            link.apply(rate_kbit=LINK_KBIT)
            on_sub = await viewer.wait(
                "congestion switch",
                lambda r: (
                    (r["stream"] or {}).get("current") == "sub"
                    and r["stream"]["reason"] == "congestion"
                ),
                30,
            )
            assert on_sub["stream"]["estimate"]["main_allowed"] is False
            # Past the switch itself and the queue it left behind: 5 s of frames on sub.
            await viewer.wait(
                "settled on sub", lambda r: r["frames"] >= on_sub["frames"] + 5 * FPS, 60
            )
            before = dict(viewer.latest)
            await viewer.wait(
                "frames on sub", lambda r: r["frames"] >= before["frames"] + 30 * FPS, 90
            )
            after = viewer.latest
            lost = after["lost_frames"] - before["lost_frames"]
            assert lost < 0.01 * (after["frames"] - before["frames"]), (before, after)
            link.lift()
            back = await viewer.wait(
                "recovery",
                lambda r: (
                    (r["stream"] or {}).get("current") == "main"
                    and r["stream"]["reason"] == "recovered"
                ),
                60,
            )
            assert back["stream"]["estimate"]["main_allowed"] is True
            (session,) = gw.gateway.sessions
            assert session.congestion is not None and session.congestion.probes >= 1
        finally:
            await viewer.close()


@pytest.mark.browser
async def test_chromiums_reports_reach_the_watch(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, chromium: Browser
) -> None:
    """What a browser sends back is what the estimate is made of: report blocks about
    our video SSRC (loss, jitter, RTT) and REMB, on loopback."""
    server = await rtsp_server({"/cam": testsrc_h264()})
    gw = await start_gateway(
        cameras=[{"name": "cam", "source": server.url("/cam"), "preload": True}]
    )
    page = await open_viewer(chromium, gw)
    try:
        sessions = gw.gateway.sessions
        async with asyncio.timeout(60):
            while not any(s.pc.connectionState == "connected" for s in sessions):
                await asyncio.sleep(0.2)
        (session,) = sessions
        sender = next(t.sender for t in session.pc.getTransceivers() if t.kind == "video")
        watch = CongestionWatch(
            sender, RecordingFeed(), main_kbps=lambda: 4000.0, sub_kbps=lambda: SUB_KBPS
        )
        assert watch.start()
        try:
            estimate: dict[str, Any] | None = None
            async with asyncio.timeout(60):
                while not (estimate and None not in (estimate["rtt_ms"], estimate["bitrate_kbps"])):
                    await asyncio.sleep(0.5)
                    estimate = watch.estimate_json()
            assert estimate["loss"] == 0.0 and estimate["jitter_ms"] is not None
            assert estimate["main_allowed"] is True
            print(f"Chromium's reports: {estimate}, {watch.rtcp_packets} RTCP packets")
        finally:
            watch.close()
    finally:
        await page.context.close()

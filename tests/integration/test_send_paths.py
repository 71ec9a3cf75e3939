"""Both send paths deliver the camera's H.264 untouched to a real aiortc viewer: the fast
one (camgate's own RTP loop) and the fallback (aiortc's own loop, fed through its public
API), taken when an aiortc upgrade renamed or reshaped an internal the fast one needs
(gateway/compat/aiortc.py) or when CAMGATE_SEND_PATH=fallback asks for it."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest
from aiortc import RTCRtpSender

from gateway.compat.check import FORCE_ENV
from gateway.media.h264 import NAL_SPS, nal_type, split_annexb
from tests.conftest import RtspServerFactory, WhepViewerFactory
from tests.integration.conftest import GatewayFactory, RunningGateway
from tests.rig.streams import testsrc_h264
from tests.rig.whep_client import WhepViewer

SMALL = {"width": 320, "height": 240, "fps": 30, "bitrate_kbps": 800, "gop_seconds": 1}
DEMO = [{"name": "cam", "source": "demo", "demo": SMALL, "preload": True}]


async def _health(gw: RunningGateway) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{gw.base_url}/api/health") as r:
        assert r.status == 200
        return await r.json()  # type: ignore[no-any-return]


async def _cameras_sps(gw: RunningGateway) -> bytes:
    idr = await gw.hub("cam").keyframe(30)
    return next(n for n in idr.nals if nal_type(n) == NAL_SPS)


def _sps_received(viewer: WhepViewer) -> set[bytes]:
    return {
        nal
        for record in viewer.encoded
        for nal in split_annexb(record.data)
        if nal_type(nal) == NAL_SPS
    }


async def _assert_viewer_gets_the_cameras_stream(
    gw: RunningGateway, whep_viewer: WhepViewerFactory
) -> WhepViewer:
    viewer = await whep_viewer(gw.base_url, "cam", decode=True, keep_encoded=True)
    await viewer.wait_frames(45, timeout=60)  # decoded pictures, 1.5 s of them
    assert all((f.width, f.height) == (320, 240) for f in viewer.frames)
    assert _sps_received(viewer) == {await _cameras_sps(gw)}  # byte for byte
    return viewer


async def test_the_fast_path_is_taken_when_every_internal_is_there(
    start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    gw = await start_gateway(cameras=DEMO)
    health = await _health(gw)
    assert health["send_path"] == "fast" and health["missing_internals"] == []
    await _assert_viewer_gets_the_cameras_stream(gw, whep_viewer)
    (session,) = gw.gateway.sessions
    assert session.send_loop is not None and session.send_loop.sent_packets > 0


async def test_the_fallback_delivers_the_camera_stream_when_asked_for(
    start_gateway: GatewayFactory,
    whep_viewer: WhepViewerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(FORCE_ENV, "fallback")
    gw = await start_gateway(cameras=DEMO)
    health = await _health(gw)
    assert health["send_path"] == "fallback" and health["missing_internals"] == []
    await _assert_viewer_gets_the_cameras_stream(gw, whep_viewer)
    (session,) = gw.gateway.sessions
    assert session.send_loop is None  # aiortc's own loop sent it
    stats = await session.pc.getStats()
    assert any(s.type == "outbound-rtp" and s.packetsSent > 0 for s in stats.values())


async def test_an_aiortc_upgrade_that_reshapes_a_hook_still_delivers_frames(
    start_gateway: GatewayFactory,
    whep_viewer: WhepViewerFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A simulated upgrade: RTCRtpSender._run_rtp's parameter renamed (aiortc itself still
    works). camgate must notice, say so once, and send through aiortc's own loop."""
    caplog.set_level(logging.INFO, "camgate")
    original = RTCRtpSender._run_rtp

    async def run_rtp(self: RTCRtpSender, parameters: Any) -> None:
        await original(self, parameters)

    monkeypatch.setattr(RTCRtpSender, "_run_rtp", run_rtp)
    gw = await start_gateway(cameras=DEMO)
    health = await _health(gw)
    assert health["send_path"] == "fallback"
    assert health["missing_internals"] == ["aiortc: RTCRtpSender._run_rtp()"]
    await _assert_viewer_gets_the_cameras_stream(gw, whep_viewer)
    await whep_viewer(gw.base_url, "cam")  # a second viewer: still one log line
    fallback_lines = [r for r in caplog.records if "send path: fallback" in r.getMessage()]
    assert len(fallback_lines) == 1 and "RTCRtpSender._run_rtp()" in caplog.text


@pytest.mark.rtsp
@pytest.mark.parametrize("send_path", ["fast", "fallback"])
async def test_a_real_cameras_h264_arrives_untouched_on_either_path(
    send_path: str,
    rtsp_server: RtspServerFactory,
    start_gateway: GatewayFactory,
    whep_viewer: WhepViewerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same with GStreamer's RTSP server as the camera (x264, not PyAV): what
    scripts/test-aiortc-floor runs at the oldest aiortc too."""
    if send_path == "fallback":
        monkeypatch.setenv(FORCE_ENV, "fallback")
    server = await rtsp_server({"/cam": testsrc_h264(width=320, height=240, gop=30)})
    gw = await start_gateway(cameras=[{"name": "cam", "source": server.url("/cam")}])
    assert (await _health(gw))["send_path"] == send_path
    await _assert_viewer_gets_the_cameras_stream(gw, whep_viewer)

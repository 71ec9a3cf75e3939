"""A camera that comes back is not left waiting out a long retry backoff: the hub sees
its port open again (probe), and any request for the camera (viewer, snapshot) retries
at once. The backoff is set to 30 s here, so only those paths can bring it back in time."""

from __future__ import annotations

import logging
import time

import aiohttp
import pytest

import gateway.hub
from tests.conftest import RtspServerFactory
from tests.integration.conftest import GatewayFactory
from tests.rig.rtsp import RtspServer
from tests.rig.streams import testsrc_h264
from tests.rig.wait import wait_until

CAMERA = testsrc_h264(width=320, height=240, gop=30)
BACK_WITHIN_S = 10.0  # the promise is 3 s; generous here, measured in the log line
log = logging.getLogger("test")


async def camera_down_then_gateway(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory
) -> tuple[RtspServer, gateway.hub.CameraHub, str]:
    server = await rtsp_server({"/cam": CAMERA})
    await server.stop()  # the port is known now; nothing listens on it
    gw = await start_gateway(
        cameras=[{"name": "cam", "source": server.url("/cam"), "preload": True}]
    )
    hub = gw.hub("cam")
    await wait_until(lambda: hub.error is not None, timeout=30)  # first attempt failed
    return server, hub, gw.base_url


async def test_a_camera_back_online_is_found_by_the_probe(
    rtsp_server: RtspServerFactory,
    start_gateway: GatewayFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gateway.hub, "BACKOFF_INITIAL_S", 30.0)
    server, hub, _ = await camera_down_then_gateway(rtsp_server, start_gateway)
    await server.start()
    back = time.monotonic()
    await hub.wait_live(BACK_WITHIN_S)
    log.info("picture back %.2f s after the camera (no viewers)", time.monotonic() - back)
    assert hub.viewers == 0


async def test_a_request_for_the_camera_retries_at_once(
    rtsp_server: RtspServerFactory,
    start_gateway: GatewayFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gateway.hub, "BACKOFF_INITIAL_S", 30.0)
    monkeypatch.setattr(gateway.hub, "PROBE_INTERVAL_S", 60.0)  # only the request can help
    server, hub, base_url = await camera_down_then_gateway(rtsp_server, start_gateway)
    await server.start()
    back = time.monotonic()
    url = f"{base_url}/api/cameras/cam/snapshot.jpg"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
    await hub.wait_live(BACK_WITHIN_S)
    log.info("picture back %.2f s after the camera (snapshot request)", time.monotonic() - back)

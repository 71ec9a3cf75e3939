"""The first viewer of an idle camera sees its latest snapshot at once, while the video
waits for the camera's next keyframe (a camera that keeps encoding, 6 s GOP)."""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import Browser

from tests.conftest import RtspServerFactory
from tests.integration.conftest import GatewayFactory
from tests.rig.rtsp import RtspPlayer
from tests.rig.streams import testsrc_h264
from tests.rig.wait import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.rtsp]

POSTER_STATE = """
(camera) => {
  const media = document.querySelector(`video[data-camera="${camera}"]`).parentElement;
  const poster = media.querySelector('img.poster');
  return {
    shown: !!poster && !poster.hidden && poster.naturalWidth > 0,
    width: poster ? poster.naturalWidth : 0,
    playing: media.classList.contains('playing'),
  };
}
"""


async def test_the_tile_shows_the_latest_snapshot_before_the_video_plays(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, chromium: Browser
) -> None:
    server = await rtsp_server({"/cam": testsrc_h264(gop=180)}, keep_encoding=True)
    player = await RtspPlayer(server.url("/cam")).start()
    try:
        await server.wait_for(lambda s: s["sessions"] >= 1, timeout=30)
        cam = {"name": "cam", "source": server.url("/cam"), "linger": 0.5}
        gw = await start_gateway(cameras=[cam])
        hub = gw.hub("cam")
        gw.gateway.snapshotters["cam"].timeout_s = 40.0  # mid-GOP on a loaded machine
        # Watched once (a snapshot here), then idle: the gateway keeps its last keyframe.
        url = gw.base_url + "/api/cameras/cam/snapshot.jpg"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            assert response.status == 200, await response.text()
        await wait_until(lambda: not hub.running, timeout=30)
        assert hub.last_keyframe is not None

        context = await chromium.new_context(bypass_csp=True)
        page = await context.new_page()
        await page.goto(gw.base_url + "/")
        await page.wait_for_function(f"({POSTER_STATE})('cam').shown", timeout=15_000)
        state = await page.evaluate(POSTER_STATE, "cam")
        assert state["shown"] and state["width"] == 640
        assert not state["playing"], "the video played first: nothing to show before it"
        # Then the video takes over (the camera's next IDR, within its 6 s GOP).
        await page.wait_for_function(f"({POSTER_STATE})('cam').playing", timeout=30_000)
        await context.close()
    finally:
        await player.stop()

"""The viewer's main/sub stream UI in headless Chromium against the real gateway
(docs/streams.md, "In the viewer"): a grid tile starts on the camera's sub stream, the full
view gets the main one on the same session, the tile's pin control chooses a stream in the
grid and is remembered across a reload."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Browser, Page

from tests.conftest import RtspServerFactory
from tests.integration.conftest import GatewayFactory
from tests.integration.test_substreams_browser import MAIN, SUB
from tests.integration.test_viewer_browser import open_viewer, tile_state
from tests.rig.streams import testsrc_h264

pytestmark = [pytest.mark.browser, pytest.mark.rtsp]

TILE = '.tile[data-camera="cam"]'
FULL = "#viewer"  # the full view; the tile's one <video> moves in and out of it


async def shows_width(page: Page, where: str, width: int) -> None:
    """Until the camera's <video>, inside `where`, plays pictures `width` wide."""
    await page.wait_for_function(
        """([where, width]) => {
          const video = window.camgate.grid.tiles.get('cam').video;
          return video.closest(where) !== null && video.videoWidth === width
            && video.currentTime > 0;
        }""",
        arg=[where, width],
        timeout=60_000,
    )


async def badge_says(page: Page, where: str, stream: str, pin: str = "auto") -> None:
    """Until the stream badge inside `where` shows `stream` with `pin`: its text names the
    stream when camgate chooses, a pin mark replaces it when the person pinned it."""
    await page.wait_for_function(
        """([where, stream, pin]) => {
          const s = document.querySelector(`${where} .stream`);
          const pinned = pin === stream;
          return s !== null && !s.hidden && s.dataset.stream === stream && s.dataset.pin === pin
            && s.querySelector('.stream-name').textContent === (pinned ? '' : stream)
            && s.querySelector('.stream-badge').hasAttribute('data-pinned') === pinned;
        }""",
        arg=[where, stream, pin],
        timeout=30_000,
    )


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


async def test_tile_badge_and_pin_follow_the_stream_the_viewer_gets(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, chromium: Browser
) -> None:
    server = await rtsp_server(
        {"/main": testsrc_h264(*MAIN, gop=30), "/sub": testsrc_h264(*SUB, gop=30)}
    )
    gw = await start_gateway(
        cameras=[{"name": "cam", "source": server.url("/main"), "substream": server.url("/sub")}]
    )
    hub = gw.hub("cam")
    page = await open_viewer(chromium, gw)
    posts: list[str] = page.whep_posts  # type: ignore[attr-defined]

    # The grid tile asks for the sub stream in its WHEP POST: it starts there, no switch.
    await tile_state(page, "cam", "live")
    await shows_width(page, TILE, SUB[0])
    await badge_says(page, TILE, "sub")
    assert [query(url)["view"] for url in posts] == [["grid"]], posts
    assert hub.switches == {}
    title = await page.evaluate(f"document.querySelector('{TILE} .stream').title")
    assert title == "Sub stream, camgate chooses (sub: grid view)"

    # Full view: the same session moves to the main stream; closing it returns to sub.
    await page.click(f"{TILE} .tile-open")
    await shows_width(page, FULL, MAIN[0])
    await badge_says(page, FULL, "main")
    await page.keyboard.press("Escape")
    await page.wait_for_function("window.camgate.grid.openName === null")
    await shows_width(page, TILE, SUB[0])
    await badge_says(page, TILE, "sub")
    assert hub.switches == {"view": 2}
    assert len(posts) == 1, posts

    # Pin main from the tile's control: main in the grid; the click on the control does
    # not open the full view.
    await page.click(f"{TILE} .stream-pin")
    await page.select_option(f"{TILE} .stream-pin", "main")
    await shows_width(page, TILE, MAIN[0])
    await badge_says(page, TILE, "main", pin="main")
    assert await page.evaluate("[window.camgate.grid.openName, location.hash]") == [None, ""]
    assert hub.switches == {"view": 2, "pin": 1}
    assert len(posts) == 1, posts

    # The pin is remembered: the reloaded page's grid tile asks for main in its POST.
    posts.clear()
    await page.reload()
    await shows_width(page, TILE, MAIN[0])
    await badge_says(page, TILE, "main", pin="main")
    assert [(q["view"], q["pin"]) for q in map(query, posts)] == [(["grid"], ["main"])], posts
    assert hub.switches == {"view": 2, "pin": 1}  # the new session started on main
    status = (await page.evaluate("window.camgate.stats('cam')"))["stream"]
    assert (status["current"], status["pin"], status["view"]) == ("main", "main", "grid")
    assert not page.errors  # type: ignore[attr-defined]
    await page.context.close()

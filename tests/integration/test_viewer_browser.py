"""The viewer in headless Chromium: GStreamer RTSP camera -> camgate -> browser.

Stats can look healthy while the picture is corrupt (e.g. half-frames from a multi-slice
camera), so besides getStats() these tests read the decoded picture's pixels and check
they are the SMPTE colour bars the camera sends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.conftest import RtspServerFactory
from tests.integration.conftest import GatewayFactory, RunningGateway
from tests.rig.streams import testsrc_h264

pytestmark = [pytest.mark.browser, pytest.mark.rtsp]

WIDTH, HEIGHT = 640, 360
# videotestsrc pattern=smpte, top two thirds: seven bars, left to right (as Chromium
# renders them: full range).
SMPTE_BARS = [
    (255, 255, 255),  # white
    (255, 255, 0),  # yellow
    (0, 255, 255),  # cyan
    (0, 255, 0),  # green
    (255, 0, 255),  # magenta
    (255, 0, 0),  # red
    (0, 0, 255),  # blue
]
TOLERANCE = 48

SAMPLE_PIXELS = """
([camera, points]) => {
  const video = document.querySelector(`video[data-camera="${camera}"]`);
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(video, 0, 0);
  return points.map(([fx, fy]) => Array.from(
    ctx.getImageData(Math.floor(fx * canvas.width), Math.floor(fy * canvas.height), 1, 1).data
  ).slice(0, 3));
}
"""


async def open_viewer(chromium: Browser, gw: RunningGateway, base_url: str | None = None) -> Page:
    """The viewer page (of `base_url`, default the gateway's loopback one). `page.errors`
    collects the page's uncaught errors, `page.whep_posts` the URLs of its WHEP POSTs."""
    # bypass_csp: Playwright's wait_for_function evaluates strings, which camgate's CSP forbids.
    context = await chromium.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    whep_posts: list[str] = []
    page.on(
        "request",
        lambda request: (
            whep_posts.append(request.url)
            if request.method == "POST" and request.url.split("?")[0].endswith("/whep")
            else None
        ),
    )
    page.whep_posts = whep_posts  # type: ignore[attr-defined]
    await page.goto((base_url or gw.base_url) + "/")
    return page


async def tile_state(page: Page, camera: str, state: str, timeout_s: float = 60) -> None:
    await page.wait_for_function(
        f"document.querySelector('.tile[data-camera=\"{camera}\"]')?.dataset.state === '{state}'",
        timeout=timeout_s * 1000,
    )


async def stats(page: Page, camera: str) -> dict[str, Any]:
    return await page.evaluate("(name) => window.camgate.stats(name)", camera)


async def frames_decoded_over(
    page: Page, camera: str, at_least: int, timeout_s: float = 60
) -> None:
    await page.wait_for_function(
        f"window.camgate.stats('{camera}').then(s => (window.__fd = s?.framesDecoded ?? 0)) "
        f"&& (window.__fd ?? 0) >= {at_least}",
        timeout=timeout_s * 1000,
        polling=100,
    )


def assert_smpte_bars(samples: list[list[int]], rows: list[float]) -> None:
    for row_index, row in enumerate(rows):
        for bar, expected in enumerate(SMPTE_BARS):
            got = samples[row_index * len(SMPTE_BARS) + bar]
            assert all(abs(g - e) <= TOLERANCE for g, e in zip(got, expected, strict=True)), (
                f"bar {bar} at height {row:.0%}: got {got}, expected about {expected}"
            )


@pytest.mark.parametrize(
    ("slices", "config_interval", "send_workers"),
    [(4, -1, 0), (1, 0, 0), (4, -1, 1)],
    ids=["four-slices", "sps-only-in-sdp", "four-slices-from-a-send-worker"],
)
async def test_browser_plays_the_camera_picture_intact(
    rtsp_server: RtspServerFactory,
    start_gateway: GatewayFactory,
    chromium: Browser,
    slices: int,
    config_interval: int,
    send_workers: int,
    tmp_path: Path,
) -> None:
    launch = testsrc_h264(
        width=WIDTH, height=HEIGHT, gop=60, slices=slices, config_interval=config_interval
    )
    server = await rtsp_server({"/cam": launch})
    webrtc = {"candidates": {"addresses": ["127.0.0.1"]}, "send_workers": send_workers}
    gw = await start_gateway(cameras=[{"name": "cam", "source": server.url("/cam")}], webrtc=webrtc)
    page = await open_viewer(chromium, gw)
    await tile_state(page, "cam", "live")
    await frames_decoded_over(page, "cam", 30)
    first = await stats(page, "cam")
    await frames_decoded_over(page, "cam", first["framesDecoded"] + 60)
    later = await stats(page, "cam")
    assert (later["width"], later["height"]) == (WIDTH, HEIGHT)
    assert later["freezeCount"] == first["freezeCount"], "the picture froze while playing"
    assert "H264" in later["codec"]

    # One sample per bar in three of the four slice bands (the overlay sits in the first).
    rows = [0.3, 0.45, 0.6]
    points = [[(bar + 0.5) / 7, row] for row in rows for bar in range(7)]
    samples = await page.evaluate(SAMPLE_PIXELS, ["cam", points])
    assert_smpte_bars(samples, rows)
    await page.screenshot(path=str(tmp_path / "viewer.png"))
    assert not page.errors  # type: ignore[attr-defined]


async def test_full_view_and_reconnect_without_reload(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, chromium: Browser
) -> None:
    server = await rtsp_server({"/cam": testsrc_h264(width=WIDTH, height=HEIGHT, gop=30)})
    gw = await start_gateway(
        cameras=[
            {"name": "cam", "source": server.url("/cam")},
            {"name": "demo", "source": "demo", "preload": True},
        ]
    )
    page = await open_viewer(chromium, gw)
    await tile_state(page, "cam", "live")
    await tile_state(page, "demo", "live")

    # Click for full size: the same session keeps playing, Escape returns to the grid.
    session_before = await page.evaluate("window.camgate.sessions.get('cam')?.location ?? null")
    await page.click('.tile[data-camera="cam"]')
    await page.wait_for_function("location.hash === '#camera=cam'")
    await page.wait_for_selector('#viewer video[data-camera="cam"]')
    playing = await stats(page, "cam")
    await frames_decoded_over(page, "cam", playing["framesDecoded"] + 15)
    assert (
        await page.evaluate("window.camgate.sessions.get('cam')?.location ?? null")
        == session_before
    )
    await page.keyboard.press("Escape")
    await page.wait_for_function("location.hash === ''")

    # The camera goes away: the tile says so; it comes back: video resumes, no reload.
    await server.stop()
    await page.wait_for_function(
        "['reconnecting', 'offline'].includes("
        "document.querySelector('.tile[data-camera=\"cam\"]').dataset.state)",
        timeout=30_000,
    )
    before = (await stats(page, "cam"))["framesDecoded"] or 0
    await server.start()
    await tile_state(page, "cam", "live", timeout_s=45)
    await frames_decoded_over(page, "cam", before + 30, timeout_s=45)
    assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1
    demo = await stats(page, "demo")
    assert demo["state"] == "live"
    assert not page.errors  # type: ignore[attr-defined]

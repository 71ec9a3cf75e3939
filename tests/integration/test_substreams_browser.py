"""Switching main and sub streams in headless Chromium: the page's own JS opens a WHEP
session with a "stream" data channel and asks for grid and full view; the <video> changes
size without a freeze, a decode error or a damaged picture (docs/streams.md)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.conftest import RtspServerFactory
from tests.integration.conftest import GatewayFactory
from tests.rig.streams import testsrc_h264

pytestmark = [pytest.mark.browser, pytest.mark.rtsp]

MAIN = (640, 360)
SUB = (320, 180)
# Longest time between two pictures shown that still is not a freeze (30 fps: 33 ms).
FROZEN_MS = 2000
# videotestsrc pattern=smpte, the middle of bars 2..7 at half height (as Chromium renders
# them: full range). The first bar is left out: the time overlay covers its top.
BARS = [
    ((3 / 14, 0.5), (255, 255, 0)),
    ((5 / 14, 0.5), (0, 255, 255)),
    ((7 / 14, 0.5), (0, 255, 0)),
    ((9 / 14, 0.5), (255, 0, 255)),
    ((11 / 14, 0.5), (255, 0, 0)),
    ((13 / 14, 0.5), (0, 0, 255)),
]
TOLERANCE = 48

# The viewer, minimal: WHEP with ICE gathered up front, the "stream" channel, and a
# requestVideoFrameCallback that records every size shown and the longest gap.
OPEN = """
async (url) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', {direction: 'recvonly'});
  const channel = pc.createDataChannel('stream', {ordered: true});
  const video = document.createElement('video');
  video.muted = true; video.autoplay = true; video.playsInline = true;
  document.body.appendChild(video);
  const t = window.t = {pc, channel, video, sizes: [], shown: 0, last: 0, gap: 0, statuses: []};
  pc.ontrack = (e) => { video.srcObject = new MediaStream([e.track]); };
  channel.onmessage = (e) => t.statuses.push(JSON.parse(e.data));
  const onFrame = (now, meta) => {
    if (t.last) t.gap = Math.max(t.gap, now - t.last);
    t.last = now;
    t.shown++;
    const size = `${meta.width}x${meta.height}`;
    if (t.sizes[t.sizes.length - 1] !== size) t.sizes.push(size);
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((resolve) => pc.addEventListener('icegatheringstatechange',
      () => pc.iceGatheringState === 'complete' && resolve()));
  }
  const response = await fetch(url, {method: 'POST', body: pc.localDescription.sdp,
                                     headers: {'Content-Type': 'application/sdp'}});
  if (response.status !== 201) throw new Error(`WHEP ${response.status}`);
  await pc.setRemoteDescription({type: 'answer', sdp: await response.text()});
}
"""
INBOUND = """
async () => {
  const stats = await window.t.pc.getStats();
  for (const s of stats.values()) {
    if (s.type === 'inbound-rtp' && s.kind === 'video')
      return {decoded: s.framesDecoded, plis: s.pliCount, firs: s.firCount,
              keyframes: s.keyFramesDecoded};
  }
  return null;
}
"""
PIXELS = """
(points) => {
  const video = window.t.video;
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


def label(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


async def shows(page: Page, size: tuple[int, int], after: int) -> None:
    """Wait until the video has shown 15 pictures of `size` since the `after`-th size."""
    await page.wait_for_function(
        "([size, after]) => window.t.sizes.lastIndexOf(size) >= after",
        arg=[label(size), after],
        timeout=60_000,
    )
    shown = await page.evaluate("window.t.shown")
    await page.wait_for_function(f"window.t.shown >= {shown + 15}", timeout=60_000)


async def assert_picture_intact(page: Page, size: tuple[int, int]) -> None:
    assert await page.evaluate("[window.t.video.videoWidth, window.t.video.videoHeight]") == [*size]
    samples = await page.evaluate(PIXELS, [point for point, _ in BARS])
    for sample, (_, colour) in zip(samples, BARS, strict=True):
        assert all(abs(a - b) <= TOLERANCE for a, b in zip(sample, colour, strict=True)), (
            sample,
            colour,
        )


async def test_chromium_switches_grid_full_grid_without_a_freeze(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, chromium: Browser
) -> None:
    server = await rtsp_server(
        {"/main": testsrc_h264(*MAIN, gop=30), "/sub": testsrc_h264(*SUB, gop=30)}
    )
    gw = await start_gateway(
        cameras=[{"name": "cam", "source": server.url("/main"), "substream": server.url("/sub")}]
    )
    context = await chromium.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(gw.base_url + "/api/health")  # any page of the gateway's origin
    await page.evaluate(OPEN, gw.base_url + "/api/cameras/cam/whep?view=grid")
    await shows(page, SUB, 0)
    await page.wait_for_function("window.t.channel.readyState === 'open'", timeout=30_000)
    await assert_picture_intact(page, SUB)
    before: dict[str, Any] = await page.evaluate(INBOUND)
    await page.evaluate("window.t.gap = 0")

    await page.evaluate("window.t.channel.send(JSON.stringify({type: 'view', view: 'full'}))")
    await shows(page, MAIN, 1)
    await assert_picture_intact(page, MAIN)
    await page.evaluate("window.t.channel.send(JSON.stringify({type: 'view', view: 'grid'}))")
    await shows(page, SUB, 2)
    await assert_picture_intact(page, SUB)

    after: dict[str, Any] = await page.evaluate(INBOUND)
    assert await page.evaluate("window.t.sizes") == [label(SUB), label(MAIN), label(SUB)]
    gap = await page.evaluate("window.t.gap")
    assert gap < FROZEN_MS, f"the picture stood still for {gap:.0f} ms"
    assert after["decoded"] > before["decoded"] + 30
    # A decode error makes Chromium ask for a keyframe: none was needed.
    assert (after["plis"], after["firs"]) == (before["plis"], before["firs"])
    assert after["keyframes"] >= before["keyframes"] + 2  # each switch began at an IDR
    statuses = await page.evaluate("window.t.statuses")
    assert [s["current"] for s in statuses if s["reason"] == "view"][-1] == "sub"
    assert gw.hub("cam").switches == {"view": 2}
    assert errors == []
    await context.close()

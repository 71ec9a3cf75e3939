"""Headless Chromium plays the demo camera's sound: muted at first, then unmuted with the
tile's own control; the received audio flows and is not silent."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.integration.conftest import GatewayFactory
from tests.integration.test_viewer_browser import open_viewer, tile_state

pytestmark = [pytest.mark.browser]

SMALL = {"width": 320, "height": 240, "fps": 10, "bitrate_kbps": 400, "gop_seconds": 1}

INBOUND_AUDIO = """
async (camera) => {
  const session = window.camgate.sessions.get(camera);
  const report = await session.pc.getStats();
  for (const s of report.values()) {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      return {packetsReceived: s.packetsReceived, totalSamplesReceived: s.totalSamplesReceived,
              audioLevel: s.audioLevel ?? 0};
    }
  }
  return null;
}
"""


async def _inbound_audio(page: Page) -> dict[str, Any]:
    return await page.evaluate(INBOUND_AUDIO, "cam")  # type: ignore[no-any-return]


async def test_the_viewer_plays_the_demos_sound_after_unmuting(
    start_gateway: GatewayFactory, chromium: Browser
) -> None:
    gw = await start_gateway(
        cameras=[{"name": "cam", "source": "demo", "demo": SMALL, "preload": True}]
    )
    page = await open_viewer(chromium, gw)
    await tile_state(page, "cam", "live")
    button = page.locator('.tile[data-camera="cam"] .audio-toggle')
    await button.wait_for(state="visible", timeout=30_000)
    assert await button.get_attribute("aria-label") == "Unmute cam"
    assert await page.evaluate("document.querySelector('video[data-camera=\"cam\"]').muted")

    await button.click()
    assert await button.get_attribute("aria-pressed") == "true"
    assert not await page.evaluate("document.querySelector('video[data-camera=\"cam\"]').muted")
    first = await _inbound_audio(page)
    assert first is not None
    await page.wait_for_function(
        "(args) => window.camgate.sessions.get('cam').pc.getStats().then(r => {"
        "  for (const s of r.values()) if (s.type === 'inbound-rtp' && s.kind === 'audio')"
        "    window.__audio = s;"
        "}) && window.__audio"
        "  && window.__audio.packetsReceived > args[0] + 50"
        "  && window.__audio.totalSamplesReceived > args[1] + 48000"
        "  && (window.__audio.audioLevel ?? 0) > 0",
        arg=[first["packetsReceived"], first["totalSamplesReceived"]],
        timeout=60_000,
        polling=200,
    )
    # The meter follows the sound (the analyser on the received track).
    await page.wait_for_function(
        "parseFloat(getComputedStyle(document.querySelector("
        "'.tile[data-camera=\"cam\"] .audio-meter')).getPropertyValue('--level')) > 0",
        timeout=30_000,
        polling=50,
    )
    await button.click()
    assert await button.get_attribute("aria-label") == "Unmute cam"
    assert not page.errors  # type: ignore[attr-defined]

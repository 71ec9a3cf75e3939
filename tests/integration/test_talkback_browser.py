"""Push-to-talk in headless Chromium: its fake microphone plays a 1 kHz tone; holding the
full view's talk button sends it through camgate to GStreamer's ONVIF camera."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.integration.conftest import GatewayFactory
from tests.integration.test_ptz_browser import no_problems, open_full_view, open_page
from tests.rig import prereq
from tests.rig.backchannel import (
    CameraFactory,
    dominant_frequency,
    loud_samples,
    write_tone_wav,
)
from tests.rig.browser import launch_chromium
from tests.rig.netns import NetNamespace
from tests.rig.wait import wait_until

pytestmark = [pytest.mark.rtsp, pytest.mark.browser]
BUTTON = "#viewer .talk-button"


@pytest.fixture
async def chromium_with_mic(netns: NetNamespace | None, tmp_path: Path) -> AsyncIterator[Browser]:
    """Chromium whose microphone is a 1 kHz tone (and never asks for permission)."""
    if not Path(prereq.CHROMIUM).exists():
        prereq.missing(f"{prereq.CHROMIUM} is missing (Debian package chromium)")
    tone = write_tone_wav(tmp_path / "tone.wav", seconds=10)
    playwright = await async_playwright().start()
    try:
        browser = await launch_chromium(
            playwright,
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={tone}",
        )
        try:
            yield browser
        finally:
            await browser.close()
    finally:
        await playwright.stop()


async def test_holding_the_button_sends_the_microphone_to_the_camera(
    start_gateway: GatewayFactory, cameras: CameraFactory, chromium_with_mic: Browser
) -> None:
    camera = await cameras(codec="pcmu")
    gw = await start_gateway(cameras=[{"name": "cam", "source": camera.url("/cam")}])
    page = await open_page(chromium_with_mic, gw)
    await open_full_view(page)
    button = page.locator(BUTTON)
    await button.wait_for(state="visible", timeout=30_000)  # the gateway said "ready"
    assert camera.backchannel_setups() == 0  # nothing is sent before the button is held

    await button.hover()
    await page.mouse.down()
    await page.wait_for_function(
        f"document.querySelector('{BUTTON}').dataset.talk === 'talking'", timeout=30_000
    )
    await wait_until(lambda: loud_samples(camera.heard()) >= 2 * camera.rate, timeout=30)
    await page.mouse.up()
    await page.wait_for_function(
        f"document.querySelector('{BUTTON}').dataset.talk === 'ready'", timeout=10_000
    )
    await wait_until(lambda: camera.count("teardown") >= 1, timeout=30)
    heard = camera.heard()
    assert abs(dominant_frequency(heard, camera.rate) - 1000) < 30
    no_problems(page)

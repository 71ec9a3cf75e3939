"""Refresh the README's picture (docs/images/viewer.png): the viewer with four cameras,
signed in, in headless Chromium; the first camera's sound is switched on (the demo
camera beeps) and the picture is taken while its level meter shows a beep. Run from the
repository root:

    .venv/bin/python scripts/screenshot.py [docs/images/viewer.png]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from playwright.async_api import async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # gateway/, tests/ of this checkout

from gateway.app import Gateway
from gateway.config import parse_config
from tests.rig.browser import launch_chromium
from tests.rig.net import free_port

PASSWORD = "screenshot only"
# The unmuted tile's level meter (web/audio.js) shows a beep: held there for the picture
# (a beep lasts 0.1 s, less than taking a screenshot does).
LOUD = """() => {
  const meter = document.querySelector('.audio-toggle[aria-pressed="true"] .audio-meter');
  if (!(Number(meter?.style.getPropertyValue('--level') || 0) > 0.3)) return false;
  meter.style.setProperty = () => {};
  return true;
}"""


async def main(out: Path) -> None:
    port = free_port()
    state = tempfile.mkdtemp(prefix="camgate-screenshot-")
    gateway = Gateway.from_config(
        parse_config(
            f"""
listen: 127.0.0.1:{port}
state_dir: {state}
auth: {{admin_password: "{PASSWORD}"}}
webrtc: {{candidates: {{addresses: [127.0.0.1]}}}}
cameras:
  - {{name: front-door, source: demo, preload: true, demo: {{width: 960, height: 540, fps: 25}}}}
  - {{name: driveway, source: demo, preload: true, demo: {{width: 960, height: 540, fps: 25}}}}
  - {{name: garden, source: demo, preload: true, demo: {{width: 640, height: 360, fps: 15}}}}
  - {{name: garage, source: 'rtsp://viewer:pw@127.0.0.1:9/stream1'}}
"""
        )
    )
    await gateway.start()
    try:
        async with async_playwright() as playwright:
            browser = await launch_chromium(playwright)
            context = await browser.new_context(viewport={"width": 1280, "height": 760})
            page = await context.new_page()
            await page.goto(f"http://127.0.0.1:{port}/")
            await page.fill('#login-form input[name="password"]', PASSWORD)
            await page.click("#login-form button")
            await page.wait_for_selector(".tile[data-state=live] >> nth=2", timeout=60_000)
            await page.click('.audio-toggle[title="Unmute front-door"]', timeout=60_000)
            await page.mouse.move(0, 0)  # no hover highlight on the button
            await page.wait_for_timeout(3000)  # let every tile show a picture
            await page.wait_for_function(LOUD, timeout=30_000)  # during a beep
            await page.screenshot(path=str(out))
            await browser.close()
    finally:
        await gateway.stop()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images/viewer.png")))

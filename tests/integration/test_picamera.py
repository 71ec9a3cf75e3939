"""The Pi camera through picamera2's API (the test stand-in: real H.264 from an encoder
thread), end to end: aiortc viewers and Chromium, keyframes on demand, start/stop with
viewers, camera errors on the tile and in the API."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest

from tests.conftest import WhepViewerFactory
from tests.integration.conftest import GatewayFactory
from tests.rig.wait import wait_until

FAKE_DIR = Path(__file__).parents[1] / "rig" / "fake_picamera2"
LIBCAMERA_DIR = Path(__file__).parents[1] / "rig" / "fake_libcamera"
SMALL = {"width": 640, "height": 360, "framerate": 30, "bitrate": 1_000_000}


@pytest.fixture
def fake_picamera2() -> Iterator[ModuleType]:
    """picamera2 (and libcamera) importable as on a Pi; its FAKE state reset."""
    sys.path[:0] = [str(FAKE_DIR), str(LIBCAMERA_DIR)]
    import picamera2

    picamera2.FAKE.reset()
    try:
        yield picamera2
    finally:
        picamera2.FAKE.unplugged.set()
        for camera in picamera2.FAKE.opened:
            camera.stop_recording()
        sys.path.remove(str(FAKE_DIR))
        sys.path.remove(str(LIBCAMERA_DIR))
        for name in [n for n in sys.modules if n.split(".")[0] in ("picamera2", "libcamera")]:
            del sys.modules[name]


def camera(**settings: Any) -> dict[str, Any]:
    return {"name": "pi", "source": "picamera", "picamera": {**SMALL, **settings}}


async def camera_json(base_url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(base_url + "/api/cameras/pi") as r:
        return await r.json()


async def test_viewers_start_on_a_fresh_keyframe_and_the_camera_stops_after_them(
    start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory, fake_picamera2: ModuleType
) -> None:
    fake = fake_picamera2.FAKE
    # A long keyframe interval: without keyframes on demand a viewer would wait 10 s.
    gw = await start_gateway(cameras=[{**camera(iperiod=300), "linger": 0.5}])
    hub = gw.hub("pi")
    assert fake.recordings == 0 and not hub.running  # an idle Pi stays cool

    first = await whep_viewer(gw.base_url, "pi", decode=True)
    await first.wait_frames(10, timeout=30)
    assert fake.recordings == 1
    encoder = fake.encoders[0]
    assert (encoder.repeat, encoder.iperiod, encoder.bitrate) == (True, 300, 1_000_000)
    assert fake.opened[0].camera_config["main"]["size"] == (640, 360)
    await wait_until(lambda: hub.frames_received > 40, timeout=30)

    # A second viewer: no cached GOP burst, the camera makes a fresh IDR for it.
    forced = fake.forced_keyframes
    started = time.monotonic()
    second = await whep_viewer(gw.base_url, "pi", decode=True)
    await second.wait_frames(1, timeout=30)
    assert time.monotonic() - started < 5  # far below the 10 s keyframe interval
    assert fake.forced_keyframes > forced
    facts = await camera_json(gw.base_url)
    assert (facts["state"], facts["width"], facts["height"]) == ("live", 640, 360)
    assert facts["source"] == "picamera 0" and facts["viewers"] == 2

    await first.close()
    await second.close()
    await wait_until(lambda: fake.stops == 1 and not hub.running, timeout=30)
    assert fake.opened[0].is_open is False


async def test_viewer_plis_reach_the_encoder_rate_limited(
    start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory, fake_picamera2: ModuleType
) -> None:
    fake = fake_picamera2.FAKE
    gw = await start_gateway(cameras=[camera(iperiod=600)])
    viewer = await whep_viewer(gw.base_url, "pi")
    await viewer.wait_frames(5, timeout=30)
    forced = fake.forced_keyframes
    # A lossy viewer sends a burst of picture-loss reports (RTCP PLI): each would cost
    # everyone an IDR, so about one a second reaches the encoder.
    started = time.monotonic()
    for _ in range(50):
        await viewer.send_pli()
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    await wait_until(lambda: fake.forced_keyframes > forced, timeout=10)
    made = fake.forced_keyframes - forced
    assert 1 <= made <= elapsed + 2
    await viewer.wait_frames(viewer.frames_received + 30, timeout=30)  # still playing


async def test_plays_in_chromium(
    start_gateway: GatewayFactory, chromium: Any, fake_picamera2: ModuleType
) -> None:
    gw = await start_gateway(cameras=[camera(iperiod=300)])
    context = await chromium.new_context(bypass_csp=True)
    page = await context.new_page()
    await page.goto(gw.base_url + "/")
    await page.wait_for_function(
        "document.querySelector('.tile[data-camera=\"pi\"]')?.dataset.state === 'live'",
        timeout=60_000,
    )
    await page.wait_for_function(
        "window.camgate.stats('pi').then(s => (window.__fd = s?.framesDecoded ?? 0)) "
        "&& (window.__fd ?? 0) >= 30",
        timeout=60_000,
        polling=200,
    )
    stats = await page.evaluate("(name) => window.camgate.stats(name)", "pi")
    assert (stats["width"], stats["height"]) == (640, 360)
    # A second tab joins mid-GOP (keyframes every 10 s): it starts on an IDR made for it.
    forced = fake_picamera2.FAKE.forced_keyframes
    second = await context.new_page()
    await second.goto(gw.base_url + "/")
    await second.wait_for_function(
        "window.camgate.stats('pi').then(s => (window.__fd = s?.framesDecoded ?? 0)) "
        "&& (window.__fd ?? 0) >= 1",
        timeout=60_000,
        polling=100,
    )
    assert fake_picamera2.FAKE.forced_keyframes > forced
    await context.close()


async def test_camera_errors_show_and_are_retried(
    start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory, fake_picamera2: ModuleType
) -> None:
    fake = fake_picamera2.FAKE
    fake.busy = True
    gw = await start_gateway(cameras=[{**camera(), "preload": True}])
    hub = gw.hub("pi")
    await wait_until(lambda: hub.error is not None, timeout=30)
    facts = await camera_json(gw.base_url)
    assert "busy" in facts["error"] and facts["state"] in ("connecting", "offline")
    fake.busy = False  # the other program let go: camgate retries by itself
    await hub.wait_live(60)

    fake.unplugged.set()  # the ribbon cable comes out mid-stream
    await wait_until(lambda: hub.error is not None and "no picture" in hub.error, timeout=30)
    fake.unplugged.clear()
    await hub.wait_live(60)
    assert fake.recordings == 2  # once the camera was free, and again after the unplug

    fake.cameras = 0
    await gw.gateway.stop()
    gw = await start_gateway(cameras=[{**camera(), "preload": True}])
    await wait_until(lambda: gw.hub("pi").error is not None, timeout=30)
    assert "no Pi camera 0 found" in (await camera_json(gw.base_url))["error"]

"""The PTZ pad in headless Chromium, end to end: pad -> "ptz" data channel -> camgate's
PtzController -> ONVIF (onvif-zeep-async) -> the strict ONVIF test device, whose RTSP URL
points at the rig's GStreamer server (so the camera streams through `onvif:` alone).

DOM contract used here (web/ptz.js): #viewer .ptz-pad[data-ready], [data-ptz=left|up|...],
form.ptz-save input[data-ptz=preset-name], li.ptz-preset[data-token] with
[data-ptz=goto-preset] / [data-ptz=remove-preset], .tile .tile-ptz-toggle, .tile-ptz.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page

from gateway.ptz.controller import CAMERA_TIMEOUT_MARGIN_S
from tests.conftest import RtspServerFactory
from tests.integration.conftest import GatewayFactory, RunningGateway
from tests.rig.netns import NetNamespace
from tests.rig.onvif_device import OnvifTestDevice
from tests.rig.streams import testsrc_h264
from tests.rig.wait import wait_until

if importlib.util.find_spec("onvif") is None:  # found without importing (logging side effects)
    pytest.skip("onvif-zeep-async is not installed", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.rtsp]

USER, PASSWORD = "admin", "secret"
DEADMAN_S = 1.0  # camgate's default dead-man timeout
PAD = "#viewer .ptz-pad"

Setup = Callable[[], Awaitable[tuple[OnvifTestDevice, RunningGateway]]]


@pytest.fixture
async def ptz_gateway(
    netns: NetNamespace | None, rtsp_server: RtspServerFactory, start_gateway: GatewayFactory
) -> AsyncIterator[Setup]:
    """`dev, gw = await ptz_gateway()`: "cam" streams and moves through ONVIF only; "plain"
    is a demo camera without PTZ. Returns once camgate knows cam's PTZ capabilities."""
    devices: list[OnvifTestDevice] = []
    gateways: list[RunningGateway] = []

    async def start() -> tuple[OnvifTestDevice, RunningGateway]:
        server = await rtsp_server({"/cam": testsrc_h264(width=640, height=360, gop=30)})
        dev = OnvifTestDevice(
            username=USER, password=PASSWORD, rtsp_url=server.url("/cam"), name="Porch"
        )
        devices.append(dev)
        await dev.start()
        onvif = {"host": dev.host, "port": dev.port, "username": USER, "password": PASSWORD}
        gw = await start_gateway(
            [
                {"name": "cam", "onvif": onvif, "preload": True},
                {"name": "plain", "source": "demo", "preload": True},
            ]
        )
        gateways.append(gw)
        await wait_until(lambda: gw.gateway.ptz_backends["cam"].capabilities.any, timeout=20)
        return dev, gw

    yield start
    for gw in gateways:  # before the devices: camgate's last words (Stop) reach them
        await gw.gateway.stop()
    for dev in devices:
        await dev.stop()
        assert dev.errors == []


async def open_page(chromium: Browser, gw: RunningGateway, **context: Any) -> Page:
    # bypass_csp: Playwright's wait_for_function evaluates strings, which the CSP forbids.
    options: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}, **context}
    ctx = await chromium.new_context(bypass_csp=True, **options)
    page = await ctx.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", on_console)
    page.problems = problems  # type: ignore[attr-defined]
    await page.goto(gw.base_url + "/")
    return page


async def open_full_view(page: Page, camera: str = "cam") -> None:
    await page.wait_for_function(
        f"document.querySelector('.tile[data-camera=\"{camera}\"]')?.dataset.state === 'live'",
        timeout=30_000,
    )
    await page.click(f'.tile[data-camera="{camera}"]')
    await page.wait_for_function(f"location.hash === '#camera={camera}'")


async def pad_ready(page: Page) -> None:
    await page.wait_for_selector(f'{PAD}[data-ready="true"]', timeout=20_000)


async def hold(page: Page, selector: str) -> None:
    await page.locator(selector).hover()
    await page.mouse.down()


def no_problems(page: Page) -> None:
    assert page.problems == []  # type: ignore[attr-defined]


async def test_hold_an_arrow_moves_until_release(ptz_gateway: Setup, chromium: Browser) -> None:
    dev, gw = await ptz_gateway()
    page = await open_page(chromium, gw)
    await open_full_view(page)
    await pad_ready(page)
    await page.fill(f'{PAD} [data-ptz="speed"]', "1")  # full speed: pan = -1 x the range

    await hold(page, f'{PAD} [data-ptz="left"]')
    move = await dev.wait_for("ContinuousMove")
    assert move.args["Velocity"]["PanTilt"]["x"] == pytest.approx(-1.0)
    assert move.args["Velocity"]["PanTilt"]["y"] == pytest.approx(0.0)
    await page.wait_for_selector(f'{PAD}[data-moving="true"]')
    # Held for twice the dead-man timeout: the pad's refreshes keep it going.
    await asyncio.sleep(2 * DEADMAN_S)
    assert dev.moving and dev.requests_of("Stop") == []
    assert dev.position[0] < -0.05

    released = time.monotonic()
    await page.mouse.up()
    stop = await dev.wait_for("Stop", timeout=2)
    assert stop.time - released < 0.5
    assert not dev.moving
    # The pad refreshes; camgate itself sends the same move again only to push back the
    # camera's own stop (ONVIF Timeout), at most once per dead-man time plus half the margin.
    moves = dev.requests_of("ContinuousMove")
    assert all(m.args["Velocity"] == move.args["Velocity"] for m in moves)
    held = stop.time - move.time
    assert len(moves) <= 1 + held / (DEADMAN_S + CAMERA_TIMEOUT_MARGIN_S / 2)
    await page.wait_for_selector(f'{PAD}[data-moving="false"]')
    assert dev.faults == []
    no_problems(page)


@pytest.mark.parametrize("how", ["close", "crash"])
async def test_leaving_the_page_mid_move_stops_the_camera(
    ptz_gateway: Setup, chromium: Browser, how: str
) -> None:
    """Closing the tab sends stop (pagehide); a crashed tab sends nothing at all, and the
    gateway's dead-man timer stops the camera."""
    dev, gw = await ptz_gateway()
    page = await open_page(chromium, gw)
    await open_full_view(page)
    await pad_ready(page)
    await hold(page, f'{PAD} [data-ptz="up"]')
    await dev.wait_for("ContinuousMove")
    await wait_until(lambda: dev.moving, timeout=5)

    left = time.monotonic()
    if how == "close":
        await page.close()
    else:
        cdp = await page.context.new_cdp_session(page)
        crash = asyncio.create_task(cdp.send("Page.crash"))  # never answered: the tab is gone
    stop = await dev.wait_for("Stop", timeout=DEADMAN_S + 2)
    assert stop.time - left <= DEADMAN_S + 0.5
    assert not dev.moving
    if how == "crash":
        crash.cancel()


async def test_presets_round_trip_through_the_pad(ptz_gateway: Setup, chromium: Browser) -> None:
    dev, gw = await ptz_gateway()
    page = await open_page(chromium, gw)
    await open_full_view(page)
    await pad_ready(page)
    await page.wait_for_selector(f"{PAD} .ptz-empty:not([hidden])")  # none yet

    # Move somewhere, then save it under a name typed into the pad (no window.prompt).
    reply = await page.evaluate(
        "window.camgate.ptz('cam', {cmd: 'absolute', pan: 0.5, tilt: -0.25, zoom: 0.5})"
    )
    assert reply["ok"], reply
    await page.click(f'{PAD} [data-ptz="save-preset"]')
    name_input = page.locator(f'{PAD} [data-ptz="preset-name"]')
    await name_input.fill("Front gate")
    await name_input.press("Enter")
    row = page.locator(f"{PAD} li.ptz-preset", has_text="Front gate")
    await row.wait_for()
    assert [p.name for p in dev.presets.values()] == ["Front gate"]
    assert list(dev.presets) == [await row.get_attribute("data-token")]
    assert await page.locator(f"{PAD} form.ptz-save").is_hidden()

    # Escape in the name field closes the form, not the full view.
    await page.click(f'{PAD} [data-ptz="save-preset"]')
    await name_input.press("Escape")
    assert await page.locator(f"{PAD} form.ptz-save").is_hidden()
    assert await page.evaluate("location.hash") == "#camera=cam"

    # Elsewhere, then back through the list.
    await page.evaluate("window.camgate.ptz('cam', {cmd: 'absolute', pan: 0, tilt: 0, zoom: 0})")
    await wait_until(lambda: dev.position == pytest.approx((0.0, 0.0, 0.0)), timeout=5)
    await row.locator('[data-ptz="goto-preset"]').click()
    goto = await dev.wait_for("GotoPreset")
    assert goto.args["PresetToken"] == await row.get_attribute("data-token")
    await wait_until(lambda: dev.position == pytest.approx((0.5, -0.25, 0.5)), timeout=5)

    # A failure shows in the pad's toast, readable.
    missing = await page.evaluate("window.camgate.ptz('cam', {cmd: 'goto_preset', preset: 'x'})")
    assert missing["ok"] is False and "no preset" in missing["error"]

    # Remove: the first click arms the button, the second removes.
    remove = row.locator('[data-ptz="remove-preset"]')
    await remove.click()
    assert dev.requests_of("RemovePreset") == []
    await remove.click()
    await dev.wait_for("RemovePreset")
    await row.wait_for(state="detached")
    assert dev.presets == {}
    no_problems(page)


async def test_keyboard_control_in_full_view(ptz_gateway: Setup, chromium: Browser) -> None:
    dev, gw = await ptz_gateway()
    page = await open_page(chromium, gw)
    await open_full_view(page)
    await pad_ready(page)

    await page.keyboard.down("ArrowLeft")
    move = await dev.wait_for("ContinuousMove")
    assert move.args["Velocity"]["PanTilt"]["x"] < 0
    for _ in range(5):  # auto-repeat keydowns are ignored: no new moves
        await page.keyboard.down("ArrowLeft")
    await asyncio.sleep(0.7)
    assert len(dev.requests_of("ContinuousMove")) == 1 and dev.moving
    await page.keyboard.up("ArrowLeft")
    await dev.wait_for("Stop", timeout=2)

    await page.keyboard.down("+")
    zoom = await dev.wait_for("ContinuousMove")
    assert zoom.args["Velocity"]["Zoom"]["x"] > 0
    await page.keyboard.up("+")
    await dev.wait_for("Stop", timeout=2)

    await page.keyboard.press("Home")
    await dev.wait_for("GotoHomePosition")

    # Losing focus while a key is held stops the camera (no keyup will come).
    await page.keyboard.down("ArrowUp")
    await dev.wait_for("ContinuousMove")
    await page.evaluate("window.dispatchEvent(new Event('blur'))")
    await dev.wait_for("Stop", timeout=2)
    await page.keyboard.up("ArrowUp")

    await page.keyboard.press("Escape")  # still closes the full view
    await page.wait_for_function("location.hash === ''")
    assert dev.faults == []
    no_problems(page)


async def test_touch_hold_on_the_tile_pad(ptz_gateway: Setup, chromium: Browser) -> None:
    """A phone: the tile's toggle opens the compact pad; a finger held on an arrow moves,
    lifting it stops. Touch goes through CDP so the touch lasts as long as we say."""
    dev, gw = await ptz_gateway()
    page = await open_page(
        chromium,
        gw,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    await page.wait_for_function(
        "document.querySelector('.tile[data-camera=\"cam\"]')?.dataset.state === 'live'",
        timeout=30_000,
    )
    assert await page.locator('.tile[data-camera="plain"] .tile-ptz-toggle').is_hidden()
    toggle = page.locator('.tile[data-camera="cam"] .tile-ptz-toggle')
    await toggle.tap()
    assert await toggle.get_attribute("aria-pressed") == "true"
    arrow = page.locator('.tile[data-camera="cam"] .tile-ptz[data-ready="true"] [data-ptz="right"]')
    await arrow.wait_for()
    box = await arrow.bounding_box()
    assert box is not None and box["width"] >= 26  # a finger-sized target on a phone
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    cdp = await page.context.new_cdp_session(page)
    point = [{"x": x, "y": y, "id": 1}]
    await cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": point})
    move = await dev.wait_for("ContinuousMove")
    assert move.args["Velocity"]["PanTilt"]["x"] > 0
    await asyncio.sleep(1.5 * DEADMAN_S)
    assert dev.moving and dev.requests_of("Stop") == []
    await cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    await dev.wait_for("Stop", timeout=2)
    assert await page.evaluate("location.hash") == ""  # the pad is not a click on the tile
    no_problems(page)


async def test_a_camera_without_ptz_has_no_pad(ptz_gateway: Setup, chromium: Browser) -> None:
    dev, gw = await ptz_gateway()
    page = await open_page(chromium, gw)
    cameras = await page.evaluate("window.camgate.ready.then(() => window.camgate.cameras())")
    by_name = {c["name"]: c for c in cameras}
    assert by_name["plain"]["ptz"] is None
    assert by_name["cam"]["ptz"]["pan_tilt"] and by_name["cam"]["ptz"]["presets"]
    await open_full_view(page, "plain")
    assert await page.locator(PAD).is_hidden()
    assert await page.locator("#viewer .ptz-toggle").is_hidden()
    reply = await page.evaluate("window.camgate.ptz('plain', {cmd: 'home'})")
    assert reply == {"v": 1, "id": reply["id"], "ok": False, "error": "this camera has no PTZ"}

    # Switching to the PTZ camera shows its pad; the toggle hides and shows it.
    await page.evaluate("location.hash = '#camera=cam'")
    await pad_ready(page)
    await page.click("#viewer .ptz-toggle")
    assert await page.locator(PAD).is_hidden()
    await page.click("#viewer .ptz-toggle")
    await pad_ready(page)
    assert dev.requests_of("ContinuousMove") == []
    no_problems(page)

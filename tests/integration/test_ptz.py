"""PTZ end to end: an aiortc viewer's "ptz" data channel and the HTTP API, through camgate's
PtzController and OnvifPtz, to the strict ONVIF test device (real SOAP via onvif-zeep-async).
Runs in the test's own network namespace."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.app import Gateway
from gateway.config import parse_config
from gateway.ptz.commands import COMMANDS
from gateway.ptz.controller import PtzController
from tests.conftest import WhepViewerFactory
from tests.integration.conftest import RunningGateway, free_port
from tests.rig.netns import NetNamespace
from tests.rig.onvif_device import PAN_TILT_VELOCITY, ZOOM_VELOCITY, OnvifTestDevice
from tests.rig.wait import wait_until
from tests.rig.whep_client import WhepViewer

if importlib.util.find_spec("onvif") is None:  # found without importing (logging side effects)
    pytest.skip("onvif-zeep-async is not installed", allow_module_level=True)

USER, PASSWORD = "admin", "secret"
UNUSED_RTSP = "rtsp://127.0.0.1:9/unused"  # PTZ through `onvif:`; the stream never plays
DEADMAN_S = 1.0  # the default

Setup = Callable[..., Awaitable[tuple[OnvifTestDevice, RunningGateway]]]


@pytest.fixture
async def ptz_camera(netns: NetNamespace | None) -> AsyncIterator[Setup]:
    """`dev, gw = await ptz_camera(**device options)`: camera "cam" (ONVIF PTZ) and "plain"
    (demo, no PTZ), PTZ learnt before returning."""
    devices: list[OnvifTestDevice] = []
    gateways: list[Gateway] = []

    async def start(**options: Any) -> tuple[OnvifTestDevice, RunningGateway]:
        dev = OnvifTestDevice(username=USER, password=PASSWORD, **options)
        devices.append(dev)
        await dev.start()
        port = free_port()
        onvif = {"host": dev.host, "port": dev.port, "username": USER, "password": PASSWORD}
        config = {
            "listen": f"127.0.0.1:{port}",
            "auth": False,
            "webrtc": {"candidates": {"addresses": ["127.0.0.1"]}},
            "cameras": [
                # preloaded: its stream fails at once, so viewers don't wait for its profile
                {"name": "cam", "source": UNUSED_RTSP, "onvif": onvif, "preload": True},
                {"name": "plain", "source": "demo"},
            ],
        }
        gateway = Gateway.from_config(parse_config(json.dumps(config)))
        gateways.append(gateway)
        await gateway.start()
        backend, hub = gateway.ptz_backends["cam"], gateway.hubs["cam"]
        await wait_until(lambda: backend.capabilities.any, timeout=15)
        await wait_until(lambda: hub.state not in ("idle", "connecting"), timeout=15)
        return dev, RunningGateway(gateway, port)

    yield start
    for gateway in gateways:
        await gateway.stop()
    for dev in devices:
        await dev.stop()
        assert dev.errors == []


async def viewer_of(whep_viewer: WhepViewerFactory, gw: RunningGateway, cam: str = "cam"):
    viewer: WhepViewer = await whep_viewer(gw.base_url, cam, ptz=True)
    await viewer.wait_ptz_open(timeout=20)
    return viewer


def controller(gw: RunningGateway) -> PtzController:
    return gw.gateway.ptz_controllers["cam"]


def stopped_because(caplog: pytest.LogCaptureFixture, why: str) -> bool:
    """The controller logged an automatic Stop for this reason ("left", "dead-man")."""
    return any(
        r.getMessage().startswith("camera cam: PTZ stop (") and why in r.getMessage()
        for r in caplog.records
    )


# --- data channel -----------------------------------------------------------------------


async def test_move_and_stop_over_the_data_channel(
    ptz_camera: Setup, whep_viewer: WhepViewerFactory
) -> None:
    dev, gw = await ptz_camera(pan_tilt_velocity=(-0.5, 0.5), zoom_velocity=(-2.0, 4.0))
    viewer = await viewer_of(whep_viewer, gw)

    reply = await viewer.ptz({"id": "m1", "cmd": "move", "pan": 1, "tilt": -0.5, "zoom": 0.5})
    assert reply == {"v": 1, "id": "m1", "ok": True}
    velocity = (await dev.wait_for("ContinuousMove")).args["Velocity"]
    assert velocity == {
        "PanTilt": {"x": 0.5, "y": -0.25, "space": PAN_TILT_VELOCITY},
        "Zoom": {"x": 2.0, "space": ZOOM_VELOCITY},
    }
    await wait_until(lambda: dev.position[0] > 0.01, timeout=10)
    assert (await viewer.ptz({"cmd": "stop"}))["ok"]
    stop = await dev.wait_for("Stop")
    assert (stop.args["PanTilt"], stop.args["Zoom"]) == ("true", "true")
    assert not dev.moving and dev.faults == []

    # Readable errors, never a crash; the id comes back when it was readable.
    bad = await viewer.ptz({"id": 9, "cmd": "move", "pan": 2})
    assert bad == {"v": 1, "id": 9, "ok": False, "error": "pan must be between -1 and 1"}
    missing = await viewer.ptz({"cmd": "goto_preset", "preset": "nowhere"})
    assert missing["error"] == "no preset 'nowhere' on this camera"


async def test_a_camera_without_ptz_says_so(
    ptz_camera: Setup, whep_viewer: WhepViewerFactory
) -> None:
    _, gw = await ptz_camera()
    viewer = await viewer_of(whep_viewer, gw, "plain")
    reply = await viewer.ptz({"cmd": "move", "pan": 1})
    assert reply["ok"] is False and reply["error"] == "this camera has no PTZ"


async def test_viewer_leaving_mid_move_stops_the_camera(
    ptz_camera: Setup, whep_viewer: WhepViewerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="camgate.ptz")
    dev, gw = await ptz_camera()
    viewer = await viewer_of(whep_viewer, gw)
    assert (await viewer.ptz({"cmd": "move", "tilt": 1}))["ok"]
    await dev.wait_for("ContinuousMove")
    left = time.monotonic()
    await viewer.close()  # WHEP DELETE and peer closed
    stop = await dev.wait_for("Stop", timeout=DEADMAN_S + 2)
    assert stop.time - left < DEADMAN_S + 1
    assert stopped_because(caplog, "left")  # released at once, not left to the dead-man
    assert not dev.moving


async def test_closing_the_data_channel_stops_the_camera(
    ptz_camera: Setup, whep_viewer: WhepViewerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="camgate.ptz")
    dev, gw = await ptz_camera()
    viewer = await viewer_of(whep_viewer, gw)
    assert (await viewer.ptz({"cmd": "move", "zoom": -1}))["ok"]
    await dev.wait_for("ContinuousMove")
    left = time.monotonic()
    viewer.close_ptz()
    stop = await dev.wait_for("Stop", timeout=DEADMAN_S + 2)
    assert stop.time - left < DEADMAN_S + 1
    assert stopped_because(caplog, "left")
    assert viewer.connection_state == "connected"  # video would go on


async def test_a_vanished_viewer_is_stopped_by_the_deadman(
    ptz_camera: Setup, whep_viewer: WhepViewerFactory
) -> None:
    dev, gw = await ptz_camera()
    viewer = await viewer_of(whep_viewer, gw)
    viewer.location = None  # no WHEP DELETE: the tab just went away
    assert (await viewer.ptz({"cmd": "move", "pan": -1}))["ok"]
    moved = (await dev.wait_for("ContinuousMove")).time
    await viewer.pc.close()
    stop = await dev.wait_for("Stop", timeout=DEADMAN_S + 3)
    assert stop.time - moved < DEADMAN_S + 1


async def test_without_refresh_the_deadman_stops_a_held_move(
    ptz_camera: Setup, whep_viewer: WhepViewerFactory
) -> None:
    dev, gw = await ptz_camera()
    viewer = await viewer_of(whep_viewer, gw)
    sent = time.monotonic()
    assert (await viewer.ptz({"cmd": "move", "pan": 1}))["ok"]
    stop = await dev.wait_for("Stop", timeout=DEADMAN_S + 3)
    assert DEADMAN_S - 0.05 <= stop.time - sent <= DEADMAN_S + 1
    assert viewer.connection_state == "connected"


async def test_refresh_keeps_a_held_move_going(
    ptz_camera: Setup, whep_viewer: WhepViewerFactory
) -> None:
    dev, gw = await ptz_camera()
    viewer = await viewer_of(whep_viewer, gw)
    assert (await viewer.ptz({"cmd": "move", "pan": 0.2}))["ok"]
    until = time.monotonic() + 2.5 * DEADMAN_S
    while time.monotonic() < until:  # a held button: refresh at the viewer's pace
        reply = await viewer.ptz({"cmd": "refresh"})
        assert reply["ok"] and reply["moving"] is True
        await asyncio.sleep(DEADMAN_S / 4)
    assert dev.requests_of("Stop") == [] and dev.moving
    assert (await viewer.ptz({"cmd": "stop"}))["ok"]
    await dev.wait_for("Stop")


async def test_a_burst_of_moves_is_coalesced_and_the_last_wins(
    ptz_camera: Setup, whep_viewer: WhepViewerFactory
) -> None:
    dev, gw = await ptz_camera()
    viewer = await viewer_of(whep_viewer, gw)
    dev.delay = 0.05  # a slow camera: 50 ms per request
    replies = await asyncio.gather(
        *(viewer.ptz({"cmd": "move", "pan": i / 50, "duration": 5}) for i in range(1, 51))
    )
    assert all(r["ok"] for r in replies)
    superseded = sum(1 for r in replies if r.get("superseded"))
    moves = dev.requests_of("ContinuousMove")
    assert len(moves) <= 10 and superseded == 50 - len(moves)
    assert moves[-1].args["Velocity"]["PanTilt"]["x"] == 1.0  # the newest one
    assert controller(gw).timings[-1].command == "move"


async def test_presets_round_trip(ptz_camera: Setup, whep_viewer: WhepViewerFactory) -> None:
    dev, gw = await ptz_camera()
    viewer = await viewer_of(whep_viewer, gw)
    assert (await viewer.ptz({"cmd": "absolute", "pan": 0.5, "tilt": -0.5, "zoom": 0.25}))["ok"]
    saved = await viewer.ptz({"cmd": "set_preset", "name": "Front door"})
    assert saved["ok"] and saved["preset"]["name"] == "Front door"
    token = saved["preset"]["token"]
    again = await viewer.ptz({"cmd": "set_preset", "name": "Front door"})
    assert again["error"] == "a preset named 'Front door' exists: remove it first"
    listed = await viewer.ptz({"cmd": "presets"})
    assert listed["presets"] == [{"token": token, "name": "Front door"}]

    assert (await viewer.ptz({"cmd": "home"}))["ok"]
    assert dev.position == pytest.approx((0.0, 0.0, 0.0))
    assert (await viewer.ptz({"cmd": "goto_preset", "preset": "front door"}))["ok"]
    assert dev.position == pytest.approx((0.5, -0.5, 0.25))
    assert (await dev.wait_for("GotoPreset")).args["PresetToken"] == token
    assert (await viewer.ptz({"cmd": "remove_preset", "preset": "Front door"}))["ok"]
    assert (await viewer.ptz({"cmd": "presets"}))["presets"] == [] and dev.presets == {}


# --- HTTP -------------------------------------------------------------------------------


async def test_http_api(ptz_camera: Setup) -> None:
    dev, gw = await ptz_camera()
    url = f"{gw.base_url}/api/cameras/cam/ptz"
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:
            assert response.status == 200
            described = await response.json()
        assert described["capabilities"]["pan_tilt"] and described["presets"] == []
        assert described["deadman_s"] == DEADMAN_S

        # A move without duration lasts the HTTP default (1 s), not forever.
        async with http.post(url, json={"v": 1, "id": 1, "cmd": "move", "pan": 1}) as response:
            assert response.status == 200
            assert await response.json() == {"v": 1, "id": 1, "ok": True}
        moved = (await dev.wait_for("ContinuousMove")).time
        stopped = (await dev.wait_for("Stop", timeout=5)).time
        assert 0.9 <= stopped - moved <= 2.5

        cases: list[tuple[str, dict[str, Any], int, str]] = [
            (url, {"data": "{}", "headers": {"Content-Type": "text/plain"}}, 415, "Content-Type"),
            (url, {"json": {"v": 1, "cmd": "stop", "x": "a" * 5000}}, 413, "too large"),
            (url, {"data": b"{", "headers": {"Content-Type": "application/json"}}, 400, "JSON"),
            (url, {"json": {"v": 1, "cmd": "move", "pan": True}}, 400, "pan must be a number"),
            (url, {"json": {"v": 1, "cmd": "goto_preset", "preset": "x"}}, 422, "no preset"),
            (url.replace("/cam/", "/nope/"), {"json": {"v": 1, "cmd": "stop"}}, 404, "unknown"),
            (url.replace("/cam/", "/plain/"), {"json": {"v": 1, "cmd": "stop"}}, 404, "no PTZ"),
        ]
        for target, kwargs, status, message in cases:
            async with http.post(target, **kwargs) as response:
                assert response.status == status, (kwargs, await response.text())
                assert message in (await response.json())["error"]

        dev.fail_next("GotoHomePosition")
        async with http.post(url, json={"v": 1, "id": "h", "cmd": "home"}) as response:
            assert response.status == 502
            body = await response.json()
            assert body["id"] == "h" and "the camera refused GotoHomePosition" in body["error"]

        async with http.get(gw.base_url + "/api/cameras") as response:
            cameras = {c["name"]: c for c in await response.json()}
        assert cameras["cam"]["ptz"]["zoom"] is True and cameras["plain"]["ptz"] is None


async def test_http_busy_and_timeout(ptz_camera: Setup) -> None:
    dev, gw = await ptz_camera()
    url = f"{gw.base_url}/api/cameras/cam/ptz"
    ptz = controller(gw)
    ptz.queue_size = 2  # (16 by default) fills sooner
    dev.delay = 0.3
    async with aiohttp.ClientSession() as http:

        async def post(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            async with http.post(url, json=body) as response:
                return response.status, await response.json()

        # One on the wire plus a full queue: the rest are refused at once, not queued.
        results = await asyncio.gather(
            *(post({"v": 1, "id": i, "cmd": "home"}) for i in range(ptz.queue_size + 3))
        )
        statuses = sorted(status for status, _ in results)
        assert statuses.count(200) >= ptz.queue_size and 409 in statuses
        assert all(
            b["error"] == "busy: too many PTZ commands queued" for s, b in results if s == 409
        )

        ptz.command_timeout_s = 0.1  # the camera (0.3 s) is slower than camgate waits
        status, body = await post({"v": 1, "id": "t", "cmd": "home"})
        assert status == 504 and body["error"] == "the camera did not answer within 0.1 s"


# --- fuzz -------------------------------------------------------------------------------

commands = st.sampled_from([*COMMANDS, "dance", ""])
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.floats(-1, 1),
    st.text(max_size=80),
)
near_misses = st.builds(
    lambda cmd, fields, v: json.dumps({"v": v, "cmd": cmd, **fields}, allow_nan=True),
    commands,
    st.dictionaries(
        st.sampled_from(["pan", "tilt", "zoom", "duration", "speed", "preset", "name", "id"]),
        values,
        max_size=4,
    ),
    st.sampled_from([1, 1, 1, 0, 2, "1", True, None]),
)
junk = st.one_of(
    near_misses,
    st.text(max_size=300),
    st.binary(max_size=300),
    st.sampled_from(["", "null", "[]", "{}", "[" * 5000, '{"v":1,"cmd":"move","pan":NaN}']),
    st.integers(4000, 60000).map(lambda n: '{"v":1,"cmd":"stop","x":"' + "a" * n + '"}'),
    st.binary(min_size=5000, max_size=20000),
)


def fuzz_messages(count: int) -> list[str | bytes]:
    """`count` messages drawn by hypothesis (no shrinking: the gateway is the subject)."""
    drawn: list[str | bytes] = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(junk)
    def draw(message: str | bytes) -> None:
        drawn.append(message)

    draw()
    return drawn


async def test_fuzzing_the_data_channel_never_wedges_the_gateway(
    ptz_camera: Setup, whep_viewer: WhepViewerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    dev, gw = await ptz_camera()
    viewer = await viewer_of(whep_viewer, gw)
    messages = fuzz_messages(400)
    for message in messages:
        await viewer.ptz_send_raw(message)
    # Every message gets exactly one well-formed reply.
    await viewer.wait_ptz_replies(len(messages), timeout=60)
    assert len(viewer.ptz_replies) == len(messages)
    for reply in viewer.ptz_replies:
        assert reply["v"] == 1 and isinstance(reply["ok"], bool)
        assert reply["ok"] or (isinstance(reply["error"], str) and reply["error"])
    # ... and the gateway still works.
    assert (await viewer.ptz({"cmd": "absolute", "pan": 0.1, "tilt": 0.2, "zoom": 0.3}))["ok"]
    assert dev.position == pytest.approx((0.1, 0.2, 0.3))
    async with aiohttp.ClientSession() as http, http.get(gw.base_url + "/api/health") as r:
        assert r.status == 200
    assert viewer.connection_state == "connected"
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]

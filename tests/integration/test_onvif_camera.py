"""ONVIF cameras end to end: camgate against the strict ONVIF test device (real SOAP through
onvif-zeep-async) and the GStreamer RTSP server, in the test's own network namespace."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from gateway.onvif.ptz import OnvifPtz
from gateway.onvif.session import AUTH_MESSAGE
from gateway.ptz.backend import NO_PTZ, Preset, PtzError
from gateway.ptz.commands import Move
from gateway.ptz.controller import CAMERA_TIMEOUT_MARGIN_S
from tests.conftest import MosquittoFactory, RtspServerFactory, WhepViewerFactory
from tests.integration.conftest import GatewayFactory, RunningGateway
from tests.rig.net import free_port, wait_port
from tests.rig.netns import NetNamespace
from tests.rig.onvif_device import (
    PAN_TILT_SPEED,
    PAN_TILT_VELOCITY,
    ZOOM_VELOCITY,
    OnvifTestDevice,
    Profile,
)
from tests.rig.rtsp import RtspServer
from tests.rig.streams import testsrc_h264
from tests.rig.wait import wait_until

if importlib.util.find_spec("onvif") is None:  # found without importing (logging side effects)
    pytest.skip("onvif-zeep-async is not installed", allow_module_level=True)

USER = "admin"
# Every character that breaks a naive URL or digest implementation.
PASSWORD = "pa ss:w@rd/#?%1"
SECRETS = (PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD))
PROFILES = (
    Profile("MainStream", 640, 360, ptz=True, name="Main"),
    Profile("SubStream", 320, 180, ptz=False, name="Sub"),
)
UNUSED_RTSP = "rtsp://127.0.0.1:9/unused"  # a camera that never connects (not preloaded)

GatewayStarter = Callable[..., Awaitable[RunningGateway]]
DeviceFactory = Callable[..., Awaitable[OnvifTestDevice]]


@pytest.fixture
async def device(netns: NetNamespace | None) -> AsyncIterator[DeviceFactory]:
    """`dev = await device(**OnvifTestDevice kwargs)`: started; checked and stopped after."""
    devices: list[OnvifTestDevice] = []

    async def start(**kwargs: Any) -> OnvifTestDevice:
        kwargs.setdefault("username", USER)
        kwargs.setdefault("password", PASSWORD)
        kwargs.setdefault("profiles", PROFILES)
        dev = OnvifTestDevice(**kwargs)
        devices.append(dev)
        await dev.start()
        return dev

    yield start
    for dev in devices:
        await dev.stop()
        assert dev.errors == []  # no reply of the device failed its schema


@pytest.fixture
def camgate(start_gateway: GatewayFactory) -> GatewayFactory:
    """`gw = await camgate([camera dicts])`."""
    return start_gateway


def onvif_block(dev: OnvifTestDevice, **extra: Any) -> dict[str, Any]:
    return {
        "host": dev.host,
        "port": dev.port,
        "username": USER,
        "password": PASSWORD,
        **extra,
    }


async def rtsp_camera(rtsp_server: RtspServerFactory) -> RtspServer:
    """The RTSP side of the camera: both profiles' streams, behind the same credentials."""
    return await rtsp_server(
        {
            "/MainStream": testsrc_h264(640, 360, gop=30),
            "/SubStream": testsrc_h264(320, 180, gop=30),
        },
        user=USER,
        password=PASSWORD,
    )


def stream_url(server: RtspServer) -> str:
    return f"rtsp://127.0.0.1:{server.port}/{{profile}}"  # as cameras answer: no credentials


def backend(gw: RunningGateway, name: str = "cam") -> OnvifPtz:
    ptz = gw.gateway.ptz_backends[name]
    assert isinstance(ptz, OnvifPtz)
    return ptz


async def api_text(gw: RunningGateway, path: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(gw.base_url + path) as response:
        assert response.status == 200
        return await response.text()


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# --- streaming ------------------------------------------------------------------------


async def test_onvif_camera_streams_with_credentials_added(
    rtsp_server: RtspServerFactory,
    device: DeviceFactory,
    camgate: GatewayStarter,
    whep_viewer: WhepViewerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    for name in ("camgate", "onvif", "zeep"):
        caplog.set_level(logging.DEBUG, logger=name)
    server = await rtsp_camera(rtsp_server)
    dev = await device(rtsp_url=stream_url(server))
    gw = await camgate([{"name": "cam", "onvif": onvif_block(dev)}])
    hub = gw.hub("cam")
    assert hub.description == f"onvif://127.0.0.1:{dev.port}"

    viewer = await whep_viewer(gw.base_url, "cam")
    await viewer.wait_frames(30, timeout=30)

    # The device handed out a URL without credentials and the RTSP server demands them:
    # the stream plays, so camgate added them (percent-encoded) for the RTSP session.
    request = await dev.wait_for("GetStreamUri")
    assert request.args["ProfileToken"] == "MainStream"  # the first H.264 profile
    assert request.args["StreamSetup"] == {
        "Stream": "RTP-Unicast",
        "Transport": {"Protocol": "RTSP"},
    }
    status = hub.status()
    assert (status.width, status.height) == (640, 360)
    assert hub.description == f"rtsp://127.0.0.1:{server.port}/MainStream"

    camera = json.loads(await api_text(gw, "/api/cameras/cam"))
    assert camera["source"] == hub.description
    assert camera["ptz"] == {
        "pan_tilt": True,
        "zoom": True,
        "presets": True,
        "home": True,
        "absolute": True,
        "relative": True,
        "max_presets": 16,
    }
    for path in ("/api/cameras", "/api/cameras/cam", "/api/health"):
        assert_no_secret(await api_text(gw, path))
    assert any("ONVIF camgate TestPTZ" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert_no_secret(record.getMessage())


async def test_start_up_asks_the_camera_once_for_profiles_nodes_and_options(
    rtsp_server: RtspServerFactory,
    device: DeviceFactory,
    camgate: GatewayStarter,
    mosquitto: MosquittoFactory,
) -> None:
    """The stream, the PTZ backend and MQTT's preset list all want the camera's profiles
    and PTZ layout at once when camgate starts: the camera is asked once and they share."""
    server = await rtsp_camera(rtsp_server)
    dev = await device(rtsp_url=stream_url(server))
    broker = await mosquitto()
    gw = await camgate(
        [{"name": "cam", "onvif": onvif_block(dev), "preload": True}],
        mqtt={"host": broker.host, "port": broker.port},
    )
    await gw.hub("cam").wait_live(30)
    await wait_until(lambda: backend(gw).loaded, timeout=15)
    await dev.wait_for("GetPresets", timeout=15)  # MQTT read the presets: everyone has asked
    for operation in ("GetProfiles", "GetNodes", "GetConfigurationOptions"):
        assert len(dev.requests_of(operation)) == 1, operation


async def test_profile_is_chosen_by_name(
    rtsp_server: RtspServerFactory,
    device: DeviceFactory,
    camgate: GatewayStarter,
    whep_viewer: WhepViewerFactory,
) -> None:
    server = await rtsp_camera(rtsp_server)
    dev = await device(rtsp_url=stream_url(server))
    gw = await camgate([{"name": "cam", "onvif": onvif_block(dev, profile="sub")}])
    viewer = await whep_viewer(gw.base_url, "cam")
    await viewer.wait_frames(10, timeout=30)
    assert (await dev.wait_for("GetStreamUri")).args["ProfileToken"] == "SubStream"
    status = gw.hub("cam").status()
    assert (status.width, status.height) == (320, 180)
    assert status.source.endswith("/SubStream")

    # The sub stream's profile has no PTZ configuration: PTZ goes through the one that has.
    await backend(gw).continuous_move(0.5, 0, 0)
    assert (await dev.wait_for("ContinuousMove")).args["ProfileToken"] == "MainStream"


async def test_a_missing_profile_is_reported_by_name(
    device: DeviceFactory, camgate: GatewayStarter
) -> None:
    dev = await device()
    gw = await camgate([{"name": "cam", "preload": True, "onvif": onvif_block(dev, profile="x")}])
    hub = gw.hub("cam")
    await wait_until(lambda: hub.error is not None, timeout=15)
    assert (
        hub.error
        == "the camera has no media profile 'x' (it has: Main (MainStream), Sub (SubStream))"
    )


async def test_stream_url_is_asked_again_after_the_camera_moves_it(
    rtsp_server: RtspServerFactory,
    device: DeviceFactory,
    camgate: GatewayStarter,
    whep_viewer: WhepViewerFactory,
) -> None:
    first = await rtsp_camera(rtsp_server)
    dev = await device(rtsp_url=stream_url(first))
    gw = await camgate([{"name": "cam", "onvif": onvif_block(dev)}])
    viewer = await whep_viewer(gw.base_url, "cam")
    await viewer.wait_frames(10, timeout=30)

    # The camera reboots and comes back serving RTSP on another port.
    await first.stop()
    second = await rtsp_camera(rtsp_server)
    assert second.port != first.port
    dev.rtsp_url = stream_url(second)
    frames = viewer.frames_received
    await viewer.wait_frames(frames + 30, timeout=30)
    assert gw.hub("cam").description == f"rtsp://127.0.0.1:{second.port}/MainStream"
    assert len(dev.requests_of("GetStreamUri")) >= 2


# --- PTZ ------------------------------------------------------------------------------


async def ptz_only_camera(
    device: DeviceFactory, camgate: GatewayStarter, **device_options: Any
) -> tuple[OnvifTestDevice, RunningGateway, OnvifPtz]:
    """An RTSP camera given PTZ through an `onvif:` block (its stream is never opened)."""
    timeout = device_options.pop("timeout", 5)
    dev = await device(**device_options)
    gw = await camgate(
        [{"name": "cam", "source": UNUSED_RTSP, "onvif": onvif_block(dev, timeout=timeout)}]
    )
    return dev, gw, backend(gw)


async def test_every_continuous_move_carries_a_timeout_a_margin_after_camgates_own(
    device: DeviceFactory, camgate: GatewayStarter
) -> None:
    dev, gw, _ = await ptz_only_camera(device, camgate)
    controller = gw.gateway.ptz_controllers["cam"]
    assert (await controller.submit(Move(pan=0.5), "viewer", held=True)).ok  # dead-man 1 s
    held = await dev.wait_for("ContinuousMove")
    assert held.args["Timeout"] == f"PT{1 + CAMERA_TIMEOUT_MARGIN_S:g}S"
    assert (await controller.submit(Move(tilt=0.5, duration=4), "http")).ok
    timed = await dev.wait_for("ContinuousMove")
    assert timed.args["Timeout"] == f"PT{4 + CAMERA_TIMEOUT_MARGIN_S:g}S"
    await dev.wait_for("Stop", timeout=15)
    assert dev.faults == []


async def test_a_camera_that_refuses_timeout_gets_moves_without_it(
    device: DeviceFactory, camgate: GatewayStarter
) -> None:
    dev, gw, ptz = await ptz_only_camera(device, camgate, accepts_timeout=False)
    controller = gw.gateway.ptz_controllers["cam"]
    for pan in (0.5, -0.5):
        assert (await controller.submit(Move(pan=pan, duration=1), "http")).ok
        move = await dev.wait_for("ContinuousMove")
        assert move.args["Velocity"]["PanTilt"]["x"] == pan and "Timeout" not in move.args
    # Refused once, then remembered: the second move went out without a Timeout at once.
    assert [f.operation for f in dev.faults] == ["ContinuousMove"]
    assert "TimeoutNotSupported" in dev.faults[0].subcodes and ptz.timeout_refused
    await dev.wait_for("Stop", timeout=15)


async def test_a_gateway_killed_mid_move_leaves_no_camera_moving(
    device: DeviceFactory, tmp_path: Path
) -> None:
    """kill -9 while the camera pans: no Stop ever comes, and this camera has no default
    timeout worth the name; the Timeout camgate sent stops it."""
    dev = await device(default_timeout=600)
    port = free_port()
    config = {
        "listen": f"127.0.0.1:{port}",
        "auth": False,
        "state_dir": str(tmp_path / "state"),
        "cameras": [{"name": "cam", "source": UNUSED_RTSP, "onvif": onvif_block(dev)}],
    }
    path = tmp_path / "camgate.yaml"
    path.write_text(json.dumps(config))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "--config", str(path), cwd=os.getcwd()
    )
    url = f"http://127.0.0.1:{port}/api/cameras/cam/ptz"
    move = {"v": 1, "cmd": "move", "pan": 0.2, "duration": 3}
    try:
        await wait_port(port, "127.0.0.1", 60)
        async with aiohttp.ClientSession() as http, http.post(url, json=move) as response:
            assert response.status == 200, await response.text()
        request = await dev.wait_for("ContinuousMove", timeout=15)
        process.send_signal(signal.SIGKILL)
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert request.args["Timeout"] == f"PT{3 + CAMERA_TIMEOUT_MARGIN_S:g}S"
    assert dev.moving
    await wait_until(lambda: not dev.moving, timeout=60)
    assert dev.requests_of("Stop") == []  # it stopped by itself


async def test_velocities_are_scaled_into_the_cameras_ranges(
    device: DeviceFactory, camgate: GatewayStarter
) -> None:
    dev, _, ptz = await ptz_only_camera(
        device, camgate, pan_tilt_velocity=(-0.5, 0.5), zoom_velocity=(-2.0, 4.0)
    )
    await ptz.continuous_move(0.5, -1.0, -0.5)
    velocity = (await dev.wait_for("ContinuousMove")).args["Velocity"]
    assert velocity == {
        "PanTilt": {"x": 0.25, "y": -0.5, "space": PAN_TILT_VELOCITY},
        "Zoom": {"x": -1.0, "space": ZOOM_VELOCITY},
    }
    await ptz.continuous_move(3.0, 0.0, 1.0)  # beyond full speed: clamped, never refused
    velocity = (await dev.wait_for("ContinuousMove")).args["Velocity"]
    assert velocity["PanTilt"]["x"] == 0.5 and velocity["PanTilt"]["y"] == 0.0
    assert velocity["Zoom"]["x"] == 4.0
    assert dev.faults == []


async def test_every_ptz_operation_round_trips(
    device: DeviceFactory, camgate: GatewayStarter
) -> None:
    dev, gw, ptz = await ptz_only_camera(device, camgate)
    await wait_until(lambda: ptz.loaded, timeout=15)  # Gateway.start() learns it at boot
    assert ptz.capabilities.any and ptz.capabilities.max_presets == 16

    await ptz.continuous_move(1.0, 0.0, 0.0)
    await wait_until(lambda: dev.position[0] > 0.01, timeout=10)
    await ptz.stop()
    stop = await dev.wait_for("Stop")
    assert (stop.args["PanTilt"], stop.args["Zoom"]) == ("true", "true")
    assert not dev.moving

    await ptz.absolute_move(0.5, -0.25, 0.75, None)
    assert dev.position == pytest.approx((0.5, -0.25, 0.75))
    await ptz.relative_move(-0.25, 0.5, -0.25, 0.5)
    assert dev.position == pytest.approx((0.25, 0.25, 0.5))
    relative = await dev.wait_for("RelativeMove")
    assert relative.args["Speed"]["PanTilt"] == {"x": 0.5, "y": 0.5, "space": PAN_TILT_SPEED}

    token = await ptz.set_preset("front door")
    assert await ptz.presets() == [Preset(token, "front door")]
    await ptz.absolute_move(0.0, 0.0, 0.0, 1.0)
    await ptz.goto_preset(token)
    assert dev.position == pytest.approx((0.25, 0.25, 0.5))
    assert (await dev.wait_for("GotoPreset")).args["PresetToken"] == token

    await ptz.home(None)
    assert dev.position == pytest.approx((0.0, 0.0, 0.0))
    await ptz.remove_preset(token)
    assert await ptz.presets() == [] and dev.presets == {}

    with pytest.raises(PtzError) as info:
        await ptz.goto_preset(token)  # a fault reply: its reason reaches the user
    assert str(info.value) == f"the camera refused GotoPreset: no preset {token!r}"
    assert gw.gateway.onvif_sessions["cam"].connects == 1  # a fault is no reason to reconnect


async def test_wrong_password_is_a_readable_error(
    device: DeviceFactory, camgate: GatewayStarter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="camgate")
    dev = await device(password="something else")
    gw = await camgate(
        [
            {"name": "cam", "preload": True, "onvif": onvif_block(dev)},
            {"name": "ptz", "source": UNUSED_RTSP, "onvif": onvif_block(dev)},
        ]
    )
    with pytest.raises(PtzError) as info:
        await backend(gw, "ptz").continuous_move(0.5, 0, 0)
    assert str(info.value) == AUTH_MESSAGE
    hub = gw.hub("cam")  # the streaming camera reports it too
    await wait_until(lambda: hub.error is not None, timeout=15)
    assert hub.error == AUTH_MESSAGE
    camera = json.loads(await api_text(gw, "/api/cameras/cam"))
    assert camera["error"] == AUTH_MESSAGE and camera["ptz"] is None
    for record in caplog.records:
        assert_no_secret(record.getMessage())


async def test_hanging_camera_times_out_while_video_plays(
    rtsp_server: RtspServerFactory,
    device: DeviceFactory,
    camgate: GatewayStarter,
    whep_viewer: WhepViewerFactory,
) -> None:
    server = await rtsp_camera(rtsp_server)
    dev = await device(rtsp_url=stream_url(server))
    gw = await camgate([{"name": "cam", "onvif": onvif_block(dev, timeout=1)}])
    viewer = await whep_viewer(gw.base_url, "cam")
    await viewer.wait_frames(10, timeout=30)
    ptz = backend(gw)
    await ptz.continuous_move(0.2, 0, 0)

    dev.delay = 30.0  # the camera's ONVIF service hangs
    started = time.monotonic()
    with pytest.raises(PtzError) as info:
        await ptz.stop()
    elapsed = time.monotonic() - started
    assert str(info.value) == "the camera did not answer within 1 s"
    assert 0.9 <= elapsed < 3.0
    frames = viewer.frames_received
    await viewer.wait_frames(frames + 30, timeout=10)  # video never depended on ONVIF

    dev.delay = 0.0
    await ptz.stop()  # the session reconnects and the command goes through
    assert gw.gateway.onvif_sessions["cam"].connects == 2


async def test_session_reconnects_after_a_reboot(
    device: DeviceFactory, camgate: GatewayStarter
) -> None:
    dev, gw, ptz = await ptz_only_camera(device, camgate)
    session = gw.gateway.onvif_sessions["cam"]
    await ptz.continuous_move(0.5, 0, 0)
    assert session.connects == 1

    await dev.reboot()  # down and up again: the kept-alive connection is dead
    await ptz.stop()
    await dev.wait_for("Stop")

    await dev.stop()  # down: the command fails readably
    with pytest.raises(PtzError) as info:
        await ptz.continuous_move(0.5, 0, 0)
    assert f"127.0.0.1:{dev.port}" in str(info.value)
    await dev.start()  # back on the same port
    await ptz.continuous_move(0, 0.5, 0)
    assert (await dev.wait_for("ContinuousMove")).args["Velocity"]["PanTilt"]["x"] == 0.5
    move = await dev.wait_for("ContinuousMove")  # the one after the outage
    assert move.args["Velocity"]["PanTilt"]["y"] == 0.5
    assert session.connects >= 2


async def test_camera_without_ptz_says_so(device: DeviceFactory, camgate: GatewayStarter) -> None:
    dev, gw, ptz = await ptz_only_camera(device, camgate, ptz=False)
    assert await ptz.load() == NO_PTZ
    camera = json.loads(await api_text(gw, "/api/cameras/cam"))
    assert camera["ptz"] is None
    with pytest.raises(PtzError, match="this camera has no PTZ"):
        await ptz.continuous_move(0.5, 0, 0)
    assert dev.faults == []

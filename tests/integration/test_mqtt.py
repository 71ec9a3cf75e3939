"""MQTT end to end: a real Mosquitto broker on loopback, a second MQTT client as the outside
world, camgate in between and the strict ONVIF test device as the camera's PTZ.
Runs in the test's own network namespace."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import logging
import os
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.mqtt.payloads import parse_ptz_payload
from gateway.ptz.commands import CommandError
from tests.conftest import MosquittoFactory
from tests.integration.conftest import GatewayFactory, RunningGateway
from tests.rig import ha_schema
from tests.rig.certs import make_server_certificate
from tests.rig.mosquitto import Mosquitto
from tests.rig.mqtt_probe import MqttProbe, Seen
from tests.rig.net import free_port
from tests.rig.netns import NetNamespace
from tests.rig.onvif_device import PAN_TILT_VELOCITY, OnvifTestDevice, Preset
from tests.rig.wait import wait_until

if importlib.util.find_spec("onvif") is None:
    pytest.skip("onvif-zeep-async is not installed", allow_module_level=True)

USER, PASSWORD = "admin", "secret"
UNUSED_RTSP = "rtsp://127.0.0.1:9/unused"  # PTZ through `onvif:`; the stream never plays
# The topics of camgate before node ids, kept by choice; the default layout (a tree per
# gateway) is tested in test_mqtt_gateways.py.
OLD_LAYOUT = {"topic_prefix": "camgate", "node_id": "camgate"}
SMALL_DEMO = {"width": 320, "height": 240, "fps": 15, "bitrate_kbps": 300, "gop_seconds": 1}
PTZ_CAMERA_ENTITIES = {
    "button": {
        "take_snapshot",
        "move_left",
        "move_right",
        "move_up",
        "move_down",
        "zoom_in",
        "zoom_out",
        "stop",
        "home",
    },
    "select": {"preset"},
    "camera": {"snapshot"},
    "sensor": {"status", "viewers"},
}


@dataclass
class Setup:
    broker: Mosquitto
    device: OnvifTestDevice
    gw: RunningGateway
    probe: MqttProbe

    def ptz_errors(self, camera: str) -> list[Seen]:
        return self.probe.on(f"camgate/{camera}/ptz/error")


SetupFactory = Callable[..., Awaitable[Setup]]


def camera_configs(device: OnvifTestDevice) -> list[dict[str, Any]]:
    onvif = {"host": device.host, "port": device.port, "username": USER, "password": PASSWORD}
    return [
        {"name": "cam", "source": UNUSED_RTSP, "onvif": onvif, "preload": True},
        {"name": "plain", "source": "demo", "demo": SMALL_DEMO, "linger": 1},
    ]


@pytest.fixture
async def mqtt_setup(
    netns: NetNamespace | None, mosquitto: MosquittoFactory, start_gateway: GatewayFactory
) -> AsyncIterator[SetupFactory]:
    """`s = await mqtt_setup(**mqtt options)`: broker, PTZ test device (one preset, "Porch"),
    gateway with cameras "cam" (ONVIF PTZ) and "plain" (demo, no PTZ), and a probe client
    subscribed to everything; returns once camgate announced itself and learnt the PTZ."""
    devices: list[OnvifTestDevice] = []
    probes: list[MqttProbe] = []

    async def start(**mqtt: Any) -> Setup:
        broker = await mosquitto()
        device = OnvifTestDevice(username=USER, password=PASSWORD)
        device.presets["P1"] = Preset("Porch", (0.3, 0.2, 0.1))
        devices.append(device)
        await device.start()
        probe = MqttProbe(broker.host, broker.port)
        probes.append(probe)
        await probe.__aenter__()
        await probe.subscribe("camgate/#", "homeassistant/#")
        settings = {
            "host": broker.host,
            "port": broker.port,
            "client_id": "cg-test",
            **OLD_LAYOUT,
            **mqtt,
        }
        gw = await start_gateway(cameras=camera_configs(device), mqtt=settings)
        await wait_until(lambda: gw.gateway.ptz_backends["cam"].capabilities.any, timeout=15)
        await probe.wait("camgate/available", lambda s: s.text == "online")
        return Setup(broker, device, gw, probe)

    yield start
    for probe in probes:
        await probe.__aexit__(None, None, None)
    for device in devices:
        await device.stop()
        assert device.errors == []


def jpeg_size(data: bytes) -> tuple[int, int]:
    assert data[:3] == b"\xff\xd8\xff"
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


# --- PTZ ----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_frigate_payloads_drive_the_camera(mqtt_setup: SetupFactory, protocol: str) -> None:
    s = await mqtt_setup(protocol=protocol, move_speed=0.5)
    dev, probe = s.device, s.probe

    async def send(payload: str, operation: str) -> dict[str, Any]:
        await probe.publish("camgate/cam/ptz", payload)
        return (await dev.wait_for(operation, timeout=15)).args

    velocity = (await send("MOVE_LEFT", "ContinuousMove"))["Velocity"]
    assert velocity["PanTilt"] == {"x": -0.5, "y": 0.0, "space": PAN_TILT_VELOCITY}
    await wait_until(lambda: dev.position[0] < -0.01, timeout=10)
    await send("STOP", "Stop")
    assert not dev.moving
    assert (await send("move_up", "ContinuousMove"))["Velocity"]["PanTilt"]["y"] == 0.5
    assert (await send("Move_Down", "ContinuousMove"))["Velocity"]["PanTilt"]["y"] == -0.5
    assert (await send("MOVE_RIGHT", "ContinuousMove"))["Velocity"]["PanTilt"]["x"] == 0.5
    assert (await send("ZOOM_IN", "ContinuousMove"))["Velocity"]["Zoom"]["x"] > 0
    assert (await send("zoom_out", "ContinuousMove"))["Velocity"]["Zoom"]["x"] < 0
    await send("stop", "Stop")

    assert (await send("preset_porch", "GotoPreset"))["PresetToken"] == "P1"
    assert dev.position == pytest.approx((0.3, 0.2, 0.1))
    await send("move_relative_0.1_-0.2", "RelativeMove")
    assert dev.position == pytest.approx((0.4, 0.0, 0.1))
    await send('{"cmd": "absolute", "pan": -0.5, "tilt": 0.5, "zoom": 0.5}', "AbsoluteMove")
    assert dev.position == pytest.approx((-0.5, 0.5, 0.5))

    state = await probe.wait(
        "camgate/cam/ptz/state", lambda m: m.retain is False and "absolute" in m.text
    )
    report = json.loads(state.text)
    assert report["last"]["ok"] and report["last"]["command"]["cmd"] == "absolute"
    assert report["presets"] == ["Porch"]
    assert s.ptz_errors("cam") == [] and dev.faults == []


async def test_a_move_without_stop_ends_by_itself(mqtt_setup: SetupFactory) -> None:
    s = await mqtt_setup(move_timeout=0.5)
    await s.probe.publish("camgate/cam/ptz", "MOVE_RIGHT")
    await s.device.wait_for("ContinuousMove", timeout=15)
    stop = await s.device.wait_for("Stop", timeout=15)
    assert (stop.args["PanTilt"], stop.args["Zoom"]) == ("true", "true")
    assert not s.device.moving


async def test_refused_commands_are_reported_on_the_error_topic(mqtt_setup: SetupFactory) -> None:
    s = await mqtt_setup()
    await s.probe.publish("camgate/cam/ptz", "preset_nowhere")
    error = json.loads((await s.probe.wait("camgate/cam/ptz/error")).text)
    assert error["error"] == "no preset 'nowhere' on this camera"
    await s.probe.publish("camgate/plain/ptz", "MOVE_LEFT")
    error = json.loads((await s.probe.wait("camgate/plain/ptz/error")).text)
    assert error["error"] == "this camera has no PTZ"
    await s.probe.publish("camgate/ghost/ptz", '{"id": 7, "cmd": "stop"}')
    error = json.loads((await s.probe.wait("camgate/ghost/ptz/error")).text)
    assert error == {
        "error": "unknown camera 'ghost'",
        "payload": '\'{"id": 7, "cmd": "stop"}\'',
        "id": 7,
    }


# --- snapshots and state ----------------------------------------------------------------


async def test_snapshot_on_request(mqtt_setup: SetupFactory) -> None:
    s = await mqtt_setup()
    await s.probe.publish("camgate/plain/snapshot/get", "")
    snapshot = await s.probe.wait("camgate/plain/snapshot", timeout=30)
    assert jpeg_size(snapshot.payload) == (320, 240)
    # Retained: a client that subscribes later (Home Assistant after a restart) gets it.
    async with MqttProbe(s.broker.host, s.broker.port, client_id="late") as late:
        await late.subscribe("camgate/plain/snapshot")
        again = await late.wait("camgate/plain/snapshot", lambda m: m.retain)
        assert again.payload == snapshot.payload


async def test_periodic_snapshots(mqtt_setup: SetupFactory) -> None:
    s = await mqtt_setup(snapshot_interval=1)
    shots = await s.probe.wait_count(lambda m: m.topic == "camgate/plain/snapshot", 2, timeout=40)
    assert all(jpeg_size(m.payload) == (320, 240) for m in shots)


async def test_camera_state_follows_viewers_and_state(
    mqtt_setup: SetupFactory, whep_viewer: Any
) -> None:
    s = await mqtt_setup()

    def state(m: Seen) -> dict[str, Any]:
        return json.loads(m.text) if m.payload else {}

    first = await s.probe.wait("camgate/plain/state")
    assert state(first)["state"] == "idle" and state(first)["online"] is True
    viewer = await whep_viewer(s.gw.base_url, "plain", decode=False)
    live = await s.probe.wait(
        "camgate/plain/state",
        lambda m: state(m).get("viewers") == 1 and state(m).get("state") == "live",
        timeout=30,
    )
    assert (state(live)["width"], state(live)["height"]) == (320, 240)
    await viewer.close()
    await s.probe.wait("camgate/plain/state", lambda m: state(m).get("viewers") == 0, timeout=30)
    await s.probe.wait("camgate/plain/state", lambda m: state(m).get("state") == "idle", timeout=30)
    # The ONVIF camera's stream is unreachable: offline, so its entities are unavailable.
    await s.probe.wait("camgate/cam/state", lambda m: state(m).get("online") is False, timeout=60)


# --- Home Assistant discovery -------------------------------------------------------------


def entities(probe: MqttProbe, camera: str, after: int = 0) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for m in probe.seen[after:]:
        parts = m.topic.split("/")
        if m.topic.startswith("homeassistant/") and len(parts) == 5 and m.payload:
            object_id = parts[3]
            if object_id.startswith(camera + "_"):
                found.setdefault(parts[1], set()).add(object_id.removeprefix(camera + "_"))
    return found


async def test_discovery_announces_valid_entities_that_work(mqtt_setup: SetupFactory) -> None:
    s = await mqtt_setup(move_timeout=5)
    probe, dev = s.probe, s.device
    select_topic = "homeassistant/select/camgate/cam_preset/config"
    # The selector comes once the presets are read; the other camera's configs follow.
    await probe.wait(select_topic, timeout=20)
    await probe.wait("homeassistant/sensor/camgate/plain_viewers/config", timeout=20)
    configs = {
        m.topic: ha_schema.validate(m.topic.split("/")[1], m.payload)
        for m in probe.seen
        if m.topic.startswith("homeassistant/") and m.payload
    }
    assert entities(probe, "cam") == PTZ_CAMERA_ENTITIES
    assert entities(probe, "plain") == {
        "button": {"take_snapshot"},
        "camera": {"snapshot"},
        "sensor": {"status", "viewers"},
    }
    assert configs[select_topic]["options"] == ["Porch"]

    # Pressing buttons in Home Assistant publishes payload_press to command_topic.
    left = configs["homeassistant/button/camgate/cam_move_left/config"]
    await probe.publish(left["command_topic"], left["payload_press"])
    assert (await dev.wait_for("ContinuousMove", timeout=15)).args["Velocity"]["PanTilt"]["x"] < 0
    await dev.wait_for("Stop", timeout=15)  # a press is a nudge: it ends by itself
    select = configs[select_topic]
    await probe.publish(
        select["command_topic"], ha_schema.render(select["command_template"], "Porch")
    )
    assert (await dev.wait_for("GotoPreset", timeout=15)).args["PresetToken"] == "P1"
    shot = configs["homeassistant/button/camgate/plain_take_snapshot/config"]
    await probe.publish(shot["command_topic"], shot["payload_press"])
    camera = configs["homeassistant/camera/camgate/plain_snapshot/config"]
    assert jpeg_size((await probe.wait(camera["topic"], timeout=30)).payload) == (320, 240)

    # Home Assistant restarted: its birth message asks for everything again.
    mark = len(probe.seen)
    await probe.publish("homeassistant/status", "online")
    await probe.wait(select_topic, after=mark, timeout=20)
    assert entities(probe, "cam", after=mark) == PTZ_CAMERA_ENTITIES

    # A preset saved from anywhere shows up in the selector.
    await probe.publish("camgate/cam/ptz", '{"cmd": "set_preset", "name": "Gate"}')
    updated = await probe.wait(select_topic, lambda m: b"Gate" in m.payload, after=mark)
    assert json.loads(updated.payload)["options"] == ["Porch", "Gate"]


async def test_removing_a_camera_removes_its_entities(
    mosquitto: MosquittoFactory, start_gateway: GatewayFactory
) -> None:
    broker = await mosquitto()
    mqtt = {"host": broker.host, "port": broker.port, "client_id": "cg-test", **OLD_LAYOUT}
    cameras = [
        {"name": "keep", "source": "demo", "demo": SMALL_DEMO},
        {"name": "gone", "source": "demo", "demo": SMALL_DEMO},
    ]
    async with MqttProbe(broker.host, broker.port) as probe:
        await probe.subscribe("homeassistant/#", "camgate/#")
        first = await start_gateway(cameras=cameras, mqtt=mqtt)
        await probe.wait("homeassistant/sensor/camgate/gone_viewers/config")
        await probe.wait("camgate/gone/state")
        await first.gateway.stop()
        await probe.wait("camgate/available", lambda m: m.text == "offline")

        mark = len(probe.seen)
        await start_gateway(cameras=cameras[:1], mqtt=mqtt)
        gone_configs = {t for t in (m.topic for m in probe.seen) if "/gone_" in t}
        for topic in gone_configs | {"camgate/gone/state"}:
            await probe.wait(topic, lambda m: m.payload == b"", after=mark)

    # What the broker retains now: only the kept camera.
    async with MqttProbe(broker.host, broker.port, client_id="after") as after:
        await after.subscribe("homeassistant/#", "camgate/+/state")
        await after.wait("homeassistant/sensor/camgate/keep_viewers/config")
        await after.wait("camgate/keep/state")
        assert not [m for m in after.seen if "gone" in m.topic]


# --- availability and the broker going away -----------------------------------------------


async def test_last_will_when_camgate_is_killed(
    mosquitto: MosquittoFactory, tmp_path: Path
) -> None:
    broker = await mosquitto()
    config = {
        "listen": f"127.0.0.1:{free_port()}",
        "cameras": [{"name": "cam", "source": "demo", "demo": SMALL_DEMO}],
        "mqtt": {"host": broker.host, "port": broker.port, "client_id": "cg-kill", **OLD_LAYOUT},
        "state_dir": str(tmp_path / "state"),
    }
    path = tmp_path / "camgate.yaml"
    path.write_text(json.dumps(config))
    async with MqttProbe(broker.host, broker.port) as probe:
        await probe.subscribe("camgate/available")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "--config", str(path), cwd=os.getcwd()
        )
        try:
            await probe.wait("camgate/available", lambda m: m.text == "online", timeout=60)
            process.send_signal(signal.SIGKILL)
            await process.wait()
            offline = await probe.wait("camgate/available", lambda m: m.text == "offline")
            assert offline.retain is False  # delivered live; the broker also keeps it:
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    async with MqttProbe(broker.host, broker.port, client_id="later") as later:
        await later.subscribe("camgate/available")
        kept = await later.wait("camgate/available")
        assert kept.text == "offline" and kept.retain


async def test_broker_down_at_start_then_restarting_never_stops_video(
    netns: NetNamespace | None, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path / "broker")  # its port is chosen, the broker not started
    mqtt = {"host": broker.host, "port": broker.port, "client_id": "cg-test", **OLD_LAYOUT}
    cameras = [{"name": "cam", "source": "demo", "demo": SMALL_DEMO, "preload": True}]
    gw = await start_gateway(cameras=cameras, mqtt=mqtt)
    hub, bridge = gw.hub("cam"), gw.gateway.mqtt
    assert bridge is not None
    await hub.wait_live(20)
    async with aiohttp.ClientSession() as http, http.get(gw.base_url + "/api/health") as r:
        assert r.status == 200  # the gateway serves while the broker is missing

    for round in range(2):
        await broker.start()
        async with MqttProbe(broker.host, broker.port, client_id=f"p{round}") as probe:
            await probe.subscribe("camgate/#", "homeassistant/#")
            await probe.wait("camgate/available", lambda m: m.text == "online", timeout=60)
            # Discovery and state are published again (the broker kept nothing).
            await probe.wait("homeassistant/camera/camgate/cam_snapshot/config")
            await probe.wait("camgate/cam/state")
            # ... and camgate subscribed again: commands work.
            await probe.publish("camgate/cam/ptz", "STOP")
            await probe.wait("camgate/cam/ptz/error")  # "no PTZ": it was heard
        frames = hub.frames_received
        await broker.stop()
        await wait_until(lambda: not bridge.connected.is_set(), timeout=30)
        await wait_until(lambda f=frames: hub.frames_received > f + 15, timeout=20)
        assert hub.state == "live"
    assert bridge.connections == 2


# --- junk ---------------------------------------------------------------------------------

junk = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    st.sampled_from(
        [
            b"",
            b"MOVE_",
            b"preset_",
            b"move_relative_1e999_0",
            b"move_relative_0_0_0_0",
            b'{"cmd": "move", "pan": [1]}',
            b'{"cmd": "move", "pan": 1e400}',
            b"[" * 5000,
            b'{"cmd":"stop","x":"' + b"a" * 10000 + b'"}',
            bytes(range(256)) * 300,
            "MOVE_LEFT\u0000".encode(),
        ]
    ),
)


def fuzz_payloads(count: int) -> list[bytes]:
    drawn: list[bytes] = []

    @settings(
        max_examples=count, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(junk)
    def draw(payload: bytes) -> None:
        drawn.append(payload)

    draw()
    return drawn


def rejected(payload: bytes) -> bool:
    try:
        parse_ptz_payload(payload, move_speed=0.5, move_timeout=10)
    except CommandError:
        return True
    return False


async def test_garbage_on_every_topic_is_refused_never_fatal(
    mqtt_setup: SetupFactory, caplog: pytest.LogCaptureFixture
) -> None:
    s = await mqtt_setup()
    probe = s.probe
    payloads = fuzz_payloads(300)
    bad_for_cam = [p for p in payloads if rejected(p)]
    for payload in payloads:
        await probe.publish("camgate/plain/ptz", payload)  # no PTZ: every one is refused
        await probe.publish("homeassistant/status", payload)
        await probe.publish("camgate/ghost/snapshot/get", payload)
    for payload in bad_for_cam:
        await probe.publish("camgate/cam/ptz", payload)
    await probe.publish("camgate/plain/snapshot/get", b"\xff" * 100_000)  # oversized request

    await probe.wait_count(
        lambda m: m.topic == "camgate/plain/ptz/error", len(payloads), timeout=60
    )
    await probe.wait_count(
        lambda m: m.topic == "camgate/cam/ptz/error", len(bad_for_cam), timeout=60
    )
    for m in s.ptz_errors("cam") + s.ptz_errors("plain"):
        error = json.loads(m.payload)
        assert isinstance(error["error"], str) and error["error"]
    # Still working: a real command moves the camera, the API answers, nothing logged an error.
    await probe.publish(
        "camgate/cam/ptz", '{"cmd": "absolute", "pan": 0.1, "tilt": 0.2, "zoom": 0.3}'
    )
    await wait_until(lambda: s.device.position == pytest.approx((0.1, 0.2, 0.3)), timeout=15)
    async with aiohttp.ClientSession() as http, http.get(s.gw.base_url + "/api/health") as r:
        assert r.status == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [m for m in probe.seen if m.topic == "camgate/plain/snapshot"]


# --- broker security ----------------------------------------------------------------------


async def test_tls_and_password_broker(
    mosquitto: MosquittoFactory,
    start_gateway: GatewayFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    certs = make_server_certificate(tmp_path / "certs")
    secret = "p@ss w0rd:/#"
    broker = await mosquitto(users={"camgate": secret, "probe": "probe-pw"}, tls=certs)
    cameras = [{"name": "cam", "source": "demo", "demo": SMALL_DEMO}]
    base = {
        "host": broker.host,
        "port": broker.port,
        "username": "camgate",
        "password": secret,
        **OLD_LAYOUT,
    }
    trusting = ssl.create_default_context(cafile=str(certs.ca))
    async with MqttProbe(
        broker.host, broker.port, username="probe", password="probe-pw", tls=trusting
    ) as probe:
        await probe.subscribe("camgate/#")
        verified = {**base, "client_id": "cg-ca", "tls": {"ca": str(certs.ca)}}
        gw = await start_gateway(cameras=cameras, mqtt=verified)
        await probe.wait("camgate/available", lambda m: m.text == "online")
        await gw.gateway.stop()

        # Encrypted without checking the certificate: an explicit choice.
        insecure = {**base, "client_id": "cg-insecure", "tls": {"insecure": True}}
        gw = await start_gateway(cameras=cameras, mqtt=insecure)
        assert gw.gateway.mqtt is not None
        await asyncio.wait_for(gw.gateway.mqtt.connected.wait(), 30)
        await gw.gateway.stop()

    def refused(why: str) -> bool:
        return any(
            "MQTT: cannot connect" in r.getMessage() and why in r.getMessage()
            for r in caplog.records
        )

    # The system's CAs don't know this broker: refused, and said so.
    untrusted = {**base, "client_id": "cg-untrusted", "tls": True}
    gw = await start_gateway(cameras=cameras, mqtt=untrusted)
    await wait_until(lambda: refused("TLS failed (mqtt.tls)"), timeout=30)
    # A wrong password is refused by the broker; no password ever reaches the log.
    wrong = {**base, "client_id": "cg-wrong", "password": "not it", "tls": {"ca": str(certs.ca)}}
    gw = await start_gateway(cameras=cameras, mqtt=wrong)
    await wait_until(lambda: refused("refused the user name or password"), timeout=30)
    assert gw.gateway.mqtt is not None and gw.gateway.mqtt.connections == 0
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert secret not in logged and "not it" not in logged

"""MqttBridge: camgate on an MQTT broker (topics in gateway/mqtt/topics.py).

It connects (and reconnects with capped backoff) without ever touching video: cameras and
viewers carry on while the broker is away. On every connect it says `online`, subscribes
again and re-publishes every retained topic (a broker restarted without persistence kept
nothing). It only ever clears retained topics it published itself: its own node id's
discovery configs, states that name it, and (after an upgrade, as soon as it sees them)
what camgate published for its cameras before node ids. Nothing a message carries can
raise out of here: bad payloads get a log line and an error message back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt

from gateway.config import MqttConfig
from gateway.hub import CameraHub
from gateway.logs import LogThrottle
from gateway.mqtt.connection import (
    OFFLINE,
    ONLINE,
    ack_promptly,
    describe_failure,
    make_client,
)
from gateway.mqtt.discovery import CameraFacts, camera_of, desired_configs
from gateway.mqtt.payloads import camera_state, parse_ptz_payload, show_payload
from gateway.mqtt.topics import Inbound, Topics
from gateway.ptz.backend import Preset, PtzBackend
from gateway.ptz.commands import (
    CommandError,
    CommandId,
    ListPresets,
    PtzCommand,
    RemovePreset,
    SetPreset,
    command_to_json,
)
from gateway.ptz.controller import Outcome, PtzController
from gateway.snapshot import SnapshotError, Snapshotter
from gateway.tasks import spawn

log = logging.getLogger("camgate.mqtt")

OWNER = "mqtt"  # the PTZ controller's owner for every MQTT command
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 30.0
STATE_REFRESH_S = 5.0  # fps/bitrate drift and PTZ capabilities learnt late
RETAINED_WAIT_S = 5.0  # for the old layout's retained configs before publishing ours
MAX_SNAPSHOT_REQUEST_BYTES = 4096


@dataclass
class MqttCamera:
    """One camera as the bridge sees it."""

    hub: CameraHub
    snapshotter: Snapshotter
    model: str
    controller: PtzController | None = None
    backend: PtzBackend | None = None


class MqttBridge:
    def __init__(self, config: MqttConfig, cameras: dict[str, MqttCamera], *, version: str) -> None:
        self.config = config
        self.cameras = cameras
        self.version = version
        self.topics = Topics(
            config.topic_prefix, config.discovery_prefix, config.node_id, config.legacy_prefix
        )
        self.connected = asyncio.Event()
        self.connections = 0  # successful connects (tests, metrics)
        self.rejected = 0  # messages refused
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._dirty = asyncio.Event()
        self._published: dict[str, str] = {}  # retained topic -> payload we last sent
        # Retained topics outside the publisher's reconcile (ptz/state, snapshot): what each
        # holds, to publish again after a reconnect.
        self._kept: dict[str, str | bytes] = {}
        self._retained_in = asyncio.Event()  # this session's retained messages have arrived
        self._presets: dict[str, tuple[str, ...]] = {}
        self._last_command: dict[str, dict[str, Any]] = {}
        self._snapshots_running: set[str] = set()
        self._junk = LogThrottle(log)
        for name, camera in cameras.items():
            camera.hub.add_listener(self._dirty.set)
            if camera.controller is not None:
                camera.controller.on_presets = self._presets_listener(name)

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mqtt")

    async def close(self) -> None:
        """Say `offline` (a clean exit fires no Last Will), then disconnect."""
        self._closing.set()
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await client.publish(self.topics.available, OFFLINE, qos=1, retain=True, timeout=2)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = BACKOFF_INITIAL_S
        where = f"{self.config.host}:{self.config.port}"
        while not self._closing.is_set():
            try:
                async with make_client(self.config, self.topics.available) as client:
                    log.info(
                        "MQTT: connected to %s as %s (node id %s, topics under %s/)",
                        where,
                        self.config.client_id,
                        self.config.node_id,
                        self.config.topic_prefix,
                    )
                    backoff = BACKOFF_INITIAL_S
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                if self.connected.is_set():
                    log.warning("MQTT: lost the broker at %s: %s", where, exc)
                else:
                    log.warning("MQTT: cannot connect to %s: %s", where, describe_failure(exc))
            finally:
                self._disconnected()
            delay = backoff * random.uniform(0.8, 1.2)
            log.info("MQTT: reconnecting in %.1f s", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _session(self, client: aiomqtt.Client) -> None:
        self._client = client
        self._published.clear()  # the broker may have lost what it held: send it all again
        self._retained_in.clear()
        await client.publish(self.topics.available, ONLINE, qos=1, retain=True)
        for topic in self.topics.subscriptions(self.config.discovery):
            await client.subscribe(topic, qos=1)
        for topic, payload in list(self._kept.items()):
            await self._publish(topic, payload, retain=True)
        self.connections += 1
        self.connected.set()
        self._dirty.set()
        helpers = [asyncio.create_task(self._publisher(client), name="mqtt-publisher")]
        if self.config.snapshot_interval_s:
            helpers.append(asyncio.create_task(self._periodic_snapshots(), name="mqtt-snapshots"))
        for name in self.cameras:
            spawn(self._refresh_presets(name), f"mqtt-presets:{name}")
        try:
            async for message in client.messages:
                ack_promptly(client)
                self._dispatch(message)
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    def _disconnected(self) -> None:
        self._client = None
        self.connected.clear()
        # Nobody can send STOP while the broker is away: end what MQTT started.
        for camera in self.cameras.values():
            if camera.controller is not None:
                camera.controller.release(OWNER)

    # --- inbound ----------------------------------------------------------------------

    def _dispatch(self, message: aiomqtt.Message) -> None:
        received_at = time.monotonic()
        topic = message.topic.value
        payload = _payload_bytes(message.payload)
        route = self.topics.route(topic)
        if route is None:
            return
        if route.kind is Inbound.PTZ:
            assert route.camera is not None
            spawn(self._ptz(route.camera, payload, received_at), f"mqtt-ptz:{route.camera}")
        elif route.kind is Inbound.SNAPSHOT_GET:
            assert route.camera is not None
            self._snapshot_request(route.camera, payload)
        elif route.kind is Inbound.STATE:
            assert route.camera is not None
            if route.camera not in self.cameras and _state_gateway(payload) == self.topics.node_id:
                spawn(self._forget_camera(route.camera), f"mqtt-forget:{route.camera}")
        elif route.kind is Inbound.LEGACY_STATE:
            # Our camera's state as camgate published it before node ids (no gateway named).
            assert route.camera is not None
            if route.camera in self.cameras and payload and _state_gateway(payload) is None:
                spawn(self._forget_legacy_camera(route.camera), f"mqtt-legacy:{route.camera}")
        elif route.kind is Inbound.AVAILABLE:
            self._retained_in.set()
        elif route.kind is Inbound.LEGACY_DISCOVERY and payload:
            assert route.object_id is not None
            if camera_of(route.object_id) in self.cameras:
                log.info("MQTT: clearing the discovery config of before node ids on %s", topic)
                spawn(self._publish(topic, b"", retain=True), "mqtt-discovery-legacy")
        elif route.kind is Inbound.HA_STATUS:
            self._ha_status(payload)
        elif route.kind is Inbound.DISCOVERY and payload:
            assert route.object_id is not None
            camera = camera_of(route.object_id)
            if camera is not None and camera not in self.cameras:
                # A camera removed from the config: Home Assistant drops an entity whose
                # retained config is emptied.
                spawn(self._publish(topic, b"", retain=True), "mqtt-discovery-cleanup")

    def _ha_status(self, payload: bytes) -> None:
        text = payload.strip().lower()
        if text == b"online":
            # Home Assistant (re)started: it wants every config and state again.
            log.info("MQTT: Home Assistant is online: publishing discovery")
            self._published.clear()
            self._dirty.set()
        elif text != b"offline":
            self.rejected += 1
            self._junk.warning(
                "MQTT: ignored %s on %s (expected online or offline)",
                show_payload(payload),
                self.topics.ha_status,
            )

    async def _ptz(self, name: str, payload: bytes, received_at: float) -> None:
        camera = self.cameras.get(name)
        try:
            id, command = parse_ptz_payload(
                payload,
                move_speed=self.config.move_speed,
                move_timeout=self.config.move_timeout_s,
            )
        except CommandError as exc:
            await self._refuse(name, exc.message, payload, exc.id)
            return
        if camera is None:
            await self._refuse(name, f"unknown camera {name!r}", payload, id)
            return
        if camera.controller is None:
            await self._refuse(name, "this camera has no PTZ", payload, id)
            return
        outcome = await camera.controller.submit(command, OWNER, received_at=received_at)
        self._last_command[name] = _command_report(command, id, outcome)
        await self._publish_ptz_state(name)
        if not outcome.ok:
            assert outcome.error is not None
            await self._refuse(name, outcome.error, payload, id)
        elif isinstance(command, SetPreset | RemovePreset):
            await self._refresh_presets(name)

    async def _refuse(self, camera: str, error: str, payload: bytes, id: CommandId) -> None:
        self.rejected += 1
        self._junk.warning(
            "MQTT: camera %s: PTZ command %s refused: %s", camera, show_payload(payload), error
        )
        report = {"error": error, "payload": show_payload(payload), "id": id}
        await self._publish(self.topics.ptz_error(camera), json.dumps(report))

    def _snapshot_request(self, name: str, payload: bytes) -> None:
        if name not in self.cameras:
            self.rejected += 1
            self._junk.warning("MQTT: snapshot requested for unknown camera %s", show_payload(name))
            return
        if len(payload) > MAX_SNAPSHOT_REQUEST_BYTES:
            self.rejected += 1
            self._junk.warning("MQTT: camera %s: oversized snapshot request ignored", name)
            return
        if name not in self._snapshots_running:  # requests during one share its result
            spawn(self._publish_snapshot(name), f"mqtt-snapshot:{name}")

    # --- outbound ---------------------------------------------------------------------

    async def _publish(self, topic: str, payload: str | bytes, *, retain: bool = False) -> bool:
        """Publish if connected; False when the broker is away (the next connect catches
        up on retained state)."""
        client = self._client
        if client is None:
            return False
        try:
            # QoS 0: TCP already delivers on a LAN, and a reconnect re-publishes all retained
            # state. A broker's PUBACK would also hold up its next message to camgate behind
            # Nagle + delayed ACK (~40 ms on Mosquitto's defaults): a PTZ command.
            await client.publish(topic, payload, qos=0, retain=retain)
        except aiomqtt.MqttError as exc:
            log.debug("MQTT: publish to %s failed: %s", topic, exc)
            return False
        return True

    async def _publish_retained_if_changed(self, topic: str, payload: str) -> None:
        if self._published.get(topic) != payload and await self._publish(
            topic, payload, retain=True
        ):
            self._published[topic] = payload

    async def _publisher(self, client: aiomqtt.Client) -> None:
        """Keeps the retained states and discovery configs equal to what is true now."""
        if self.topics.migrating_discovery and self.config.discovery:
            # Old configs go first: Home Assistant then gives the new entities the old ids.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._retained_in.wait(), RETAINED_WAIT_S)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), STATE_REFRESH_S)
            self._dirty.clear()
            for name, camera in self.cameras.items():
                facts = camera_state(camera.hub.status(), gateway=self.topics.node_id)
                state = json.dumps(facts, sort_keys=True)
                await self._publish_retained_if_changed(self.topics.state(name), state)
            if self.config.discovery:
                await self._reconcile_discovery()

    async def _reconcile_discovery(self) -> None:
        wanted = desired_configs(
            self.topics,
            [self._facts(name, camera) for name, camera in self.cameras.items()],
            version=self.version,
            move_speed=self.config.move_speed,
        )
        for topic, config in wanted.items():
            await self._publish_retained_if_changed(topic, config)
        discovery_root = self.topics.discovery_prefix + "/"
        for topic in [t for t in self._published if t.startswith(discovery_root)]:
            if topic not in wanted and await self._publish(topic, b"", retain=True):
                del self._published[topic]

    def _facts(self, name: str, camera: MqttCamera) -> CameraFacts:
        caps = camera.backend.capabilities if camera.backend is not None else None
        return CameraFacts(name, camera.model, caps, self._presets.get(name, ()))

    async def _publish_ptz_state(self, name: str) -> None:
        state = {"last": self._last_command.get(name), "presets": list(self._presets.get(name, ()))}
        await self._publish_kept(self.topics.ptz_state(name), json.dumps(state))

    async def _publish_snapshot(self, name: str) -> None:
        self._snapshots_running.add(name)
        try:
            snapshot = await self.cameras[name].snapshotter.take()
        except SnapshotError as exc:
            self._junk.warning("MQTT: camera %s: no snapshot: %s", name, exc)
            await self._publish(self.topics.snapshot_error(name), json.dumps({"error": str(exc)}))
            return
        finally:
            self._snapshots_running.discard(name)
        await self._publish_kept(self.topics.snapshot(name), snapshot.jpeg)

    async def _publish_kept(self, topic: str, payload: str | bytes) -> None:
        """A retained message that every later connect publishes again."""
        self._kept[topic] = payload
        await self._publish(topic, payload, retain=True)

    async def _periodic_snapshots(self) -> None:
        while True:
            for name in self.cameras:
                self._snapshot_request(name, b"")
            await asyncio.sleep(self.config.snapshot_interval_s)

    async def _forget_legacy_camera(self, name: str) -> None:
        log.info("MQTT: camera %s: clearing its retained topics of before node ids", name)
        for leaf in ("state", "ptz/state", "snapshot"):
            await self._publish(self.topics.legacy_camera(name, leaf), b"", retain=True)

    async def _forget_camera(self, name: str) -> None:
        """A camera that is no longer configured: clear what the broker retains for it."""
        log.info("MQTT: clearing retained topics of removed camera %s", show_payload(name))
        for topic in (
            self.topics.state(name),
            self.topics.ptz_state(name),
            self.topics.snapshot(name),
        ):
            await self._publish(topic, b"", retain=True)

    # --- presets ----------------------------------------------------------------------

    async def _refresh_presets(self, name: str) -> None:
        """Read the camera's presets (the controller's hook passes them on)."""
        camera = self.cameras[name]
        if camera.controller is None or camera.backend is None:
            return
        caps = camera.backend.capabilities
        if caps.any and not caps.presets:
            return
        outcome = await camera.controller.submit(ListPresets(), OWNER)
        if not outcome.ok:
            log.debug("MQTT: camera %s: presets not read: %s", name, outcome.error)

    def _presets_listener(self, name: str) -> Callable[[list[Preset]], None]:
        def changed(presets: list[Preset]) -> None:
            names = tuple(p.name for p in presets)
            if self._presets.get(name) != names:
                self._presets[name] = names
                self._dirty.set()
                spawn(self._publish_ptz_state(name), f"mqtt-ptz-state:{name}")

        return changed


def _command_report(command: PtzCommand, id: CommandId, outcome: Outcome) -> dict[str, Any]:
    return {
        "command": command_to_json(command, id),
        "ok": outcome.ok,
        "error": outcome.error,
        "at": round(time.time(), 3),
    }


def _state_gateway(payload: bytes) -> str | None:
    """The node id a retained state names as its publisher; None for none (or not JSON)."""
    try:
        state = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    gateway = state.get("gateway") if isinstance(state, dict) else None
    return gateway if isinstance(gateway, str) else None


def _payload_bytes(payload: Any) -> bytes:
    """aiomqtt hands over bytes; be tolerant of its other payload types."""
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode()

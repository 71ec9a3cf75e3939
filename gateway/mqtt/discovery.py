"""Home Assistant MQTT discovery configs for each camera. Pure: no I/O.

Each camera is one Home Assistant device with: a camera entity fed by the snapshot topic,
a "Take snapshot" button, status and viewer sensors and, when the camera has PTZ, a button
per direction, zoom in/out, stop (and home), and a preset selector. Every entity is
available only while camgate is connected (its Last Will) and the camera is not offline.

The gateway publishes `desired_configs()` retained and an empty retained message for every
config it published before that is no longer wanted (a camera or preset list removed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.mqtt.topics import Topics
from gateway.ptz.backend import PtzCapabilities

# A button press nudges the camera: Home Assistant buttons have no "release" event.
BUTTON_NUDGE_S = 1.0
MANUFACTURER = "camgate"


# Every entity a camera can have: `<camera>_<entity>` is its object id.
ENTITIES = (
    "snapshot",
    "take_snapshot",
    "status",
    "viewers",
    "move_left",
    "move_right",
    "move_up",
    "move_down",
    "zoom_in",
    "zoom_out",
    "stop",
    "home",
    "preset",
)


GATEWAY_AVAILABILITY = {"status"}


def camera_of(object_id: str) -> str | None:
    """The camera an object id of ours belongs to; None if it is not one of ours."""
    for entity in sorted(ENTITIES, key=len, reverse=True):  # take_snapshot before snapshot
        camera = object_id.removesuffix("_" + entity)
        if camera != object_id:
            return camera or None
    return None


@dataclass(frozen=True, slots=True)
class CameraFacts:
    """What discovery needs to know about one camera."""

    name: str
    model: str  # "RTSP camera", "ONVIF camera", "Demo camera", ...
    ptz: PtzCapabilities | None  # None: no PTZ (or not known yet)
    presets: tuple[str, ...] = ()


def desired_configs(
    topics: Topics, cameras: list[CameraFacts], *, version: str, move_speed: float
) -> dict[str, str]:
    """Discovery topic -> JSON config for every entity of every camera."""
    configs: dict[str, str] = {}
    for camera in cameras:
        for component, object_id, config in _entities(topics, camera, move_speed):
            config = {**_common(topics, camera, component, object_id, version), **config}
            configs[topics.discovery(component, f"{camera.name}_{object_id}")] = json.dumps(
                config, sort_keys=True
            )
    return configs


def _entities(
    topics: Topics, camera: CameraFacts, speed: float
) -> list[tuple[str, str, dict[str, Any]]]:
    name = camera.name
    entities: list[tuple[str, str, dict[str, Any]]] = [
        ("camera", "snapshot", {"name": None, "topic": topics.snapshot(name)}),
        (
            "button",
            "take_snapshot",
            {
                "name": "Take snapshot",
                "command_topic": topics.snapshot_get(name),
                "payload_press": "PRESS",
                "icon": "mdi:camera",
            },
        ),
        (
            "sensor",
            "status",
            {
                "name": "Status",
                "state_topic": topics.state(name),
                "value_template": "{{ value_json.state }}",
                "entity_category": "diagnostic",
                "icon": "mdi:cctv",
            },
        ),
        (
            "sensor",
            "viewers",
            {
                "name": "Viewers",
                "state_topic": topics.state(name),
                "value_template": "{{ value_json.viewers }}",
                "state_class": "measurement",
                "entity_category": "diagnostic",
                "icon": "mdi:eye",
            },
        ),
    ]
    caps = camera.ptz
    if caps is None or not caps.any:
        return entities
    moves: list[tuple[str, str, dict[str, float], str]] = []
    if caps.pan_tilt:
        moves += [
            ("move_left", "Move left", {"pan": -speed}, "mdi:arrow-left"),
            ("move_right", "Move right", {"pan": speed}, "mdi:arrow-right"),
            ("move_up", "Move up", {"tilt": speed}, "mdi:arrow-up"),
            ("move_down", "Move down", {"tilt": -speed}, "mdi:arrow-down"),
        ]
    if caps.zoom:
        moves += [
            ("zoom_in", "Zoom in", {"zoom": speed}, "mdi:magnify-plus"),
            ("zoom_out", "Zoom out", {"zoom": -speed}, "mdi:magnify-minus"),
        ]
    for object_id, label, axes, icon in moves:
        press = {"cmd": "move", **axes, "duration": BUTTON_NUDGE_S}
        entities.append(("button", object_id, _ptz_button(topics, name, label, press, icon)))
    entities.append(("button", "stop", _ptz_button(topics, name, "Stop", "STOP", "mdi:stop")))
    if caps.home:
        home = {"cmd": "home"}
        entities.append(("button", "home", _ptz_button(topics, name, "Home", home, "mdi:home")))
    if caps.presets and camera.presets:
        entities.append(
            (
                "select",
                "preset",
                {
                    "name": "Preset",
                    "command_topic": topics.ptz(name),
                    # JSON, not Frigate's preset_<name>: a name may hold any character.
                    "command_template": '{"cmd": "goto_preset", "preset": {{ value | tojson }}}',
                    "options": list(camera.presets),
                    "optimistic": True,
                    "icon": "mdi:map-marker-star",
                },
            )
        )
    return entities


def _ptz_button(
    topics: Topics, camera: str, label: str, press: dict[str, Any] | str, icon: str
) -> dict[str, Any]:
    return {
        "name": label,
        "command_topic": topics.ptz(camera),
        "payload_press": press if isinstance(press, str) else json.dumps(press),
        "icon": icon,
    }


def _common(
    topics: Topics, camera: CameraFacts, component: str, object_id: str, version: str
) -> dict[str, Any]:
    gateway_only = [{"topic": topics.available}]
    camera_too = [
        *gateway_only,
        {
            "topic": topics.state(camera.name),
            "value_template": "{{ 'online' if value_json.online else 'offline' }}",
        },
    ]
    entity_id = f"{topics.entity_prefix}_{camera.name}_{object_id}".lower()
    return {
        "unique_id": f"{topics.node_id}_{camera.name}_{object_id}".lower(),
        # Entity ids as before node ids: upgrading keeps dashboards and automations working
        # (Home Assistant adds _2 where two gateways have cameras of one name).
        "default_entity_id": f"{component}.{entity_id}",
        "device": {
            "identifiers": [f"{topics.node_id}_{camera.name}"],
            "name": camera.name,
            "manufacturer": MANUFACTURER,
            "model": camera.model,
            "sw_version": version,
        },
        "origin": {"name": "camgate", "sw_version": version},
        "availability_mode": "all",
        # The status sensor reports the camera being offline, so only the gateway being
        # away makes it unavailable; everything else needs the camera too.
        "availability": gateway_only if object_id in GATEWAY_AVAILABILITY else camera_too,
    }

"""Topic routing and Home Assistant discovery configs (checked against HA's schemas)."""

from __future__ import annotations

import json

import pytest
import voluptuous as vol

from gateway.mqtt.discovery import BUTTON_NUDGE_S, CameraFacts, camera_of, desired_configs
from gateway.mqtt.payloads import parse_ptz_payload
from gateway.mqtt.topics import Inbound, Route, Topics
from gateway.ptz.backend import PtzCapabilities
from gateway.ptz.commands import GotoPreset, Move, Stop
from tests.rig import ha_schema

TOPICS = Topics("camgate", "homeassistant", "camgate")
FULL_PTZ = PtzCapabilities(pan_tilt=True, zoom=True, presets=True, home=True)


def configs(*cameras: CameraFacts) -> dict[str, dict]:
    found = desired_configs(TOPICS, list(cameras), version="1.2.3", move_speed=0.5)
    return {topic: json.loads(payload) for topic, payload in found.items()}


@pytest.mark.parametrize(
    ("topic", "route"),
    [
        ("camgate/front/ptz", Route(Inbound.PTZ, camera="front")),
        ("camgate/front/snapshot/get", Route(Inbound.SNAPSHOT_GET, camera="front")),
        ("camgate/front/state", Route(Inbound.STATE, camera="front")),
        ("homeassistant/status", Route(Inbound.HA_STATUS)),
        (
            "homeassistant/button/camgate/front_stop/config",
            Route(Inbound.DISCOVERY, object_id="front_stop"),
        ),
        ("camgate/front/ptz/state", None),
        ("camgate/front/ptz/error", None),
        ("camgate/available", Route(Inbound.AVAILABLE)),
        ("camgate//ptz", None),
        ("homeassistant/button/other/front_stop/config", None),
        ("elsewhere/front/ptz", None),
    ],
)
def test_routes(topic: str, route: Route | None) -> None:
    assert TOPICS.route(topic) == route


def test_legacy_node_id_is_made_from_the_prefix_as_before() -> None:
    topics = Topics("home/cams.v2", "homeassistant", "camgate-1", legacy_prefix="home/cams.v2")
    assert topics.legacy_node_id == "home_cams_v2" and topics.migrating_discovery
    assert not topics.migrating_topics


NEW = Topics("camgate/camgate-1a", "homeassistant", "camgate-1a", legacy_prefix="camgate")


@pytest.mark.parametrize(
    ("topic", "route"),
    [
        ("camgate/camgate-1a/front/ptz", Route(Inbound.PTZ, camera="front")),
        ("camgate/camgate-1a/front/state", Route(Inbound.STATE, camera="front")),
        ("camgate/camgate-1a/available", Route(Inbound.AVAILABLE)),
        ("camgate/front/state", Route(Inbound.LEGACY_STATE, camera="front")),
        (
            "homeassistant/button/camgate/front_stop/config",
            Route(Inbound.LEGACY_DISCOVERY, object_id="front_stop"),
        ),
        (
            "homeassistant/button/camgate-1a/front_stop/config",
            Route(Inbound.DISCOVERY, object_id="front_stop"),
        ),
        # Another gateway's tree and configs are none of ours.
        ("camgate/camgate-2b/front/state", None),
        ("camgate/camgate-2b/front/ptz", None),
        ("homeassistant/button/camgate-2b/front_stop/config", None),
        ("camgate/front/ptz", None),
    ],
)
def test_routes_of_a_gateway_with_its_own_tree(topic: str, route: Route | None) -> None:
    assert NEW.route(topic) == route


def test_subscriptions_end_with_our_own_availability() -> None:
    assert NEW.subscriptions(True) == [
        "camgate/camgate-1a/+/ptz",
        "camgate/camgate-1a/+/snapshot/get",
        "camgate/camgate-1a/+/state",
        "homeassistant/status",
        "homeassistant/+/camgate-1a/+/config",
        "homeassistant/+/camgate/+/config",
        "camgate/+/state",
        "camgate/camgate-1a/available",
    ]
    old_layout = Topics("camgate", "homeassistant", "camgate", legacy_prefix="camgate")
    assert not old_layout.migrating_discovery and not old_layout.migrating_topics
    assert len(old_layout.subscriptions(True)) == 6


def test_ids_are_per_gateway_and_entity_ids_as_before() -> None:
    facts = [CameraFacts("front", "RTSP camera", None)]
    found = desired_configs(NEW, facts, version="1", move_speed=0.5)
    other = Topics("camgate/camgate-2b", "homeassistant", "camgate-2b", legacy_prefix="camgate")
    theirs = desired_configs(other, facts, version="1", move_speed=0.5)
    assert not set(found) & set(theirs)
    mine = [json.loads(c) for c in found.values()]
    assert not {c["unique_id"] for c in mine} & {
        json.loads(c)["unique_id"] for c in theirs.values()
    }
    sensor = json.loads(found["homeassistant/sensor/camgate-1a/front_viewers/config"])
    assert sensor["unique_id"] == "camgate-1a_front_viewers"
    assert sensor["default_entity_id"] == "sensor.camgate_front_viewers"
    assert sensor["state_topic"] == "camgate/camgate-1a/front/state"
    assert sensor["availability"][0] == {"topic": "camgate/camgate-1a/available"}


@pytest.mark.parametrize(
    ("object_id", "camera"),
    [
        ("front_stop", "front"),
        ("front_yard_take_snapshot", "front_yard"),
        ("front_snapshot", "front"),
        ("a_b_move_left", "a_b"),
        ("front_unknown_thing", None),
        ("_stop", None),
    ],
)
def test_camera_of_object_id(object_id: str, camera: str | None) -> None:
    assert camera_of(object_id) == camera


def test_every_config_validates_against_home_assistant_schemas() -> None:
    found = desired_configs(
        TOPICS,
        [
            CameraFacts("front", "ONVIF camera", FULL_PTZ, ("Porch", 'Gate "1"')),
            CameraFacts("garden", "RTSP camera", None),
        ],
        version="1.2.3",
        move_speed=0.5,
    )
    assert found
    unique_ids = set()
    for topic, payload in found.items():
        component = topic.split("/")[1]
        config = ha_schema.validate(component, payload)
        unique_ids.add(config["unique_id"])
        assert config["availability_mode"] == "all"
        assert {a["topic"] for a in config["availability"]} >= {"camgate/available"}
        object_id = topic.split("/")[3]
        assert camera_of(object_id) in ("front", "garden")
    assert len(unique_ids) == len(found)


def test_ptz_camera_gets_buttons_and_a_preset_selector() -> None:
    found = configs(CameraFacts("front", "ONVIF camera", FULL_PTZ, ("Porch", "Gate")))
    buttons = {t.split("/")[3] for t in found if t.startswith("homeassistant/button/")}
    assert buttons == {
        f"front_{b}"
        for b in (
            "take_snapshot",
            "move_left",
            "move_right",
            "move_up",
            "move_down",
            "zoom_in",
            "zoom_out",
            "stop",
            "home",
        )
    }
    select = found["homeassistant/select/camgate/front_preset/config"]
    assert select["options"] == ["Porch", "Gate"]
    camera = found["homeassistant/camera/camgate/front_snapshot/config"]
    assert camera["topic"] == "camgate/front/snapshot"


def test_button_and_select_payloads_are_commands_camgate_accepts() -> None:
    name = 'Gate "1" \\ ü'
    found = configs(CameraFacts("front", "ONVIF camera", FULL_PTZ, (name,)))

    def command(payload: str):
        return parse_ptz_payload(payload.encode(), move_speed=0.5, move_timeout=10)[1]

    left = found["homeassistant/button/camgate/front_move_left/config"]
    assert left["command_topic"] == "camgate/front/ptz"
    assert command(left["payload_press"]) == Move(pan=-0.5, duration=BUTTON_NUDGE_S)
    stop = found["homeassistant/button/camgate/front_stop/config"]
    assert command(stop["payload_press"]) == Stop()
    select = found["homeassistant/select/camgate/front_preset/config"]
    rendered = ha_schema.render(select["command_template"], name)
    assert command(rendered) == GotoPreset(name)


def test_availability_template_follows_the_camera_state() -> None:
    found = configs(CameraFacts("front", "RTSP camera", None))
    availability = found["homeassistant/camera/camgate/front_snapshot/config"]["availability"]
    template = availability[1]["value_template"]
    assert ha_schema.render(template, '{"online": true}') == "online"
    assert ha_schema.render(template, '{"online": false}') == "offline"


def test_status_sensor_is_available_with_the_gateway_alone() -> None:
    """So it can show `offline`: the other entities are unavailable while the camera is."""
    found = configs(CameraFacts("front", "ONVIF camera", FULL_PTZ, ("Porch",)))
    status = found["homeassistant/sensor/camgate/front_status/config"]
    assert status["availability"] == [{"topic": "camgate/available"}]
    ha_schema.validate("sensor", json.dumps(status))
    assert ha_schema.render(status["value_template"], '{"state": "offline"}') == "offline"
    for topic, config in found.items():
        if topic.endswith("/front_status/config"):
            continue
        assert [a["topic"] for a in config["availability"]] == [
            "camgate/available",
            "camgate/front/state",
        ], topic


def test_camera_without_ptz_or_presets() -> None:
    plain = configs(CameraFacts("garden", "RTSP camera", None))
    assert not [t for t in plain if "move_" in t or "select" in t]
    zoom_only = configs(CameraFacts("z", "ONVIF camera", PtzCapabilities(zoom=True)))
    buttons = {t.split("/")[3] for t in zoom_only if "/button/" in t}
    assert buttons == {"z_take_snapshot", "z_zoom_in", "z_zoom_out", "z_stop"}
    no_presets = configs(CameraFacts("p", "ONVIF camera", FULL_PTZ, ()))
    assert not [t for t in no_presets if "/select/" in t]


def test_schema_catches_mistakes() -> None:
    good = configs(CameraFacts("front", "RTSP camera", None))
    topic = "homeassistant/button/camgate/front_take_snapshot/config"
    for broken in (
        {**good[topic], "comand_topic": "x"},
        {k: v for k, v in good[topic].items() if k != "command_topic"},
        {**good[topic], "command_topic": "camgate/+/ptz"},
        {**good[topic], "device": {"name": "no identifiers"}},
        {**good[topic], "availability": [{"value_template": "{{ x "}]},
    ):
        with pytest.raises(vol.Invalid):
            ha_schema.validate("button", json.dumps(broken))

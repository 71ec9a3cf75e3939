"""Home Assistant's MQTT discovery schemas for the platforms camgate announces, written
with voluptuous (the library Home Assistant validates them with) from its documentation
(home-assistant.io/integrations/{button,select,camera,sensor}.mqtt, "MQTT discovery").

Stricter than Home Assistant on one point: unknown keys are errors here (Home Assistant
drops them silently, which would hide a typo). Templates are rendered with Jinja2 as Home
Assistant would, so a broken template fails too.
"""

from __future__ import annotations

import json
from typing import Any

import jinja2
import voluptuous as vol

JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)


def template(value: Any) -> str:
    if not isinstance(value, str):
        raise vol.Invalid("template must be a string")
    try:
        JINJA.parse(value)
    except jinja2.TemplateSyntaxError as exc:
        raise vol.Invalid(f"invalid template: {exc}") from None
    return value


def topic(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value.encode()) > 65535 or "\0" in value:
        raise vol.Invalid("invalid MQTT topic")
    return value


def publish_topic(value: Any) -> str:
    value = topic(value)
    if "+" in value or "#" in value:
        raise vol.Invalid("wildcards are not allowed in a publish topic")
    return value


def subscribe_topic(value: Any) -> str:
    value = topic(value)
    for i, level in enumerate(value.split("/")):
        if ("+" in level or "#" in level) and level not in ("+", "#"):
            raise vol.Invalid("a wildcard must fill a whole topic level")
        if level == "#" and i != value.count("/"):
            raise vol.Invalid("# must be the last level")
    return value


def _has_identity(device: dict[str, Any]) -> dict[str, Any]:
    if not device.get("identifiers") and not device.get("connections"):
        raise vol.Invalid("device needs identifiers or connections")
    return device


AVAILABILITY = vol.Schema(
    {
        vol.Required("topic"): subscribe_topic,
        vol.Optional("payload_available"): str,
        vol.Optional("payload_not_available"): str,
        vol.Optional("value_template"): template,
    }
)
DEVICE = vol.All(
    vol.Schema(
        {
            vol.Optional("identifiers"): vol.All([str], vol.Length(min=1)),
            vol.Optional("connections"): [[str]],
            vol.Optional("name"): str,
            vol.Optional("manufacturer"): str,
            vol.Optional("model"): str,
            vol.Optional("model_id"): str,
            vol.Optional("sw_version"): str,
            vol.Optional("hw_version"): str,
            vol.Optional("serial_number"): str,
            vol.Optional("suggested_area"): str,
            vol.Optional("configuration_url"): str,
            vol.Optional("via_device"): str,
        }
    ),
    _has_identity,
)
ORIGIN = vol.Schema(
    {
        vol.Required("name"): str,
        vol.Optional("sw_version"): str,
        vol.Optional("support_url"): str,
    }
)
ENTITY = {
    # A device only attaches to an entity with a unique_id: camgate always sends both.
    vol.Required("unique_id"): str,
    vol.Required("device"): DEVICE,
    vol.Optional("default_entity_id"): str,
    vol.Optional("object_id"): str,
    vol.Optional("name"): vol.Any(None, str),
    vol.Optional("icon"): vol.All(str, vol.Match(r"^mdi:[a-z0-9-]+$")),
    vol.Optional("origin"): ORIGIN,
    vol.Optional("availability"): vol.All([AVAILABILITY], vol.Length(min=1)),
    vol.Optional("availability_mode"): vol.In(["all", "any", "latest"]),
    vol.Optional("availability_topic"): subscribe_topic,
    vol.Optional("availability_template"): template,
    vol.Optional("payload_available"): str,
    vol.Optional("payload_not_available"): str,
    vol.Optional("enabled_by_default"): bool,
    vol.Optional("entity_category"): vol.In(["config", "diagnostic"]),
    vol.Optional("entity_picture"): str,
    vol.Optional("json_attributes_topic"): subscribe_topic,
    vol.Optional("json_attributes_template"): template,
    vol.Optional("encoding"): str,
    vol.Optional("qos"): vol.In([0, 1, 2]),
}
COMMAND = {
    vol.Required("command_topic"): publish_topic,
    vol.Optional("command_template"): template,
    vol.Optional("retain"): bool,
}
PLATFORMS = {
    "button": vol.Schema(
        {
            **ENTITY,
            **COMMAND,
            vol.Optional("payload_press"): str,
            vol.Optional("device_class"): vol.In(["identify", "restart", "update"]),
        }
    ),
    "select": vol.Schema(
        {
            **ENTITY,
            **COMMAND,
            vol.Required("options"): vol.All([str], vol.Length(min=1)),
            vol.Optional("optimistic"): bool,
            vol.Optional("state_topic"): subscribe_topic,
            vol.Optional("value_template"): template,
        }
    ),
    "camera": vol.Schema(
        {**ENTITY, vol.Required("topic"): subscribe_topic, vol.Optional("image_encoding"): "b64"}
    ),
    "sensor": vol.Schema(
        {
            **ENTITY,
            vol.Required("state_topic"): subscribe_topic,
            vol.Optional("value_template"): template,
            vol.Optional("unit_of_measurement"): str,
            vol.Optional("device_class"): str,
            vol.Optional("state_class"): vol.In(["measurement", "total", "total_increasing"]),
            vol.Optional("expire_after"): int,
            vol.Optional("force_update"): bool,
            vol.Optional("suggested_display_precision"): int,
        }
    ),
}


def validate(component: str, payload: str | bytes) -> dict[str, Any]:
    """The config as Home Assistant would accept it; raises vol.Invalid otherwise."""
    config = json.loads(payload)
    if component not in PLATFORMS:
        raise vol.Invalid(f"camgate announces no {component!r} entities")
    config = PLATFORMS[component](config)
    if "availability" in config and "availability_topic" in config:
        raise vol.Invalid("availability and availability_topic are mutually exclusive")
    return config


def render(template_text: str, value: str) -> str:
    """A template the way Home Assistant renders it for an MQTT value."""
    try:
        value_json: Any = json.loads(value)
    except ValueError:
        value_json = None
    return JINJA.from_string(template_text).render(value=value, value_json=value_json)


def available(config: dict[str, Any], retained: dict[str, bytes]) -> bool:
    """Whether Home Assistant shows the entity as available, given the last payload on each
    topic (`availability` list, modes `all` and `any`; a topic without a message yet
    counts as not available)."""
    verdicts = []
    for entry in config.get("availability", []):
        payload = retained.get(entry["topic"])
        if payload is None:
            verdicts.append(False)
            continue
        text = payload.decode("utf-8", "replace")
        if "value_template" in entry:
            text = render(entry["value_template"], text)
        verdicts.append(text == entry.get("payload_available", "online"))
    mode = config.get("availability_mode", "latest")
    if mode not in ("all", "any"):
        raise NotImplementedError(f"availability_mode {mode!r}: order of arrival not modelled")
    return all(verdicts) if mode == "all" else any(verdicts)

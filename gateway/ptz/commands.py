"""The PTZ command vocabulary (docs/ptz.md) and its strict JSON parser. Pure: no I/O.

The command dataclasses validate themselves, so every way in builds commands alike and
gets the same readable errors: the data channel and HTTP through `parse_command`, MQTT's
Frigate payloads by constructing them directly (`Move(pan=-0.5)` for MOVE_LEFT,
`GotoPreset("porch")` for preset_porch, `Relative(pan=0.1, tilt=0)` for move_relative_...).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar

VERSION = 1
MAX_MESSAGE_BYTES = 4096
MAX_ID_CHARS = 64
MAX_SAFE_INTEGER = 2**53 - 1  # ids are echoed to JavaScript: keep them exact there
MAX_NAME_CHARS = 64  # ONVIF ReferenceToken / preset name length
MIN_DURATION_S, MAX_DURATION_S = 0.1, 60.0
ENVELOPE_FIELDS = frozenset({"v", "id", "cmd"})

CommandId = str | int | None


class CommandError(ValueError):
    """A command that can't be accepted; `message` is safe and readable for the sender."""

    def __init__(self, message: str, id: CommandId = None) -> None:
        super().__init__(message)
        self.message = message
        self.id = id


# --- field validators -------------------------------------------------------------------


def _number(value: object, name: str, low: float, high: float) -> float:
    # bool is an int subclass: `true` is not a speed.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CommandError(f"{name} must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise CommandError(f"{name} must be a finite number")
    if not low <= value <= high:  # compared before float(): a huge int can't overflow
        raise CommandError(f"{name} must be between {low:g} and {high:g}")
    return float(value)


def _optional_number(value: object, name: str, low: float, high: float) -> float | None:
    return None if value is None else _number(value, name, low, high)


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise CommandError(f"{name} must be true or false")
    return value


def _name(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise CommandError(f"{name} must be a string")
    if not 1 <= len(value) <= MAX_NAME_CHARS:
        raise CommandError(f"{name} must be 1-{MAX_NAME_CHARS} characters")
    if not value.isprintable() or not value.strip():
        raise CommandError(f"{name} must be printable characters, not only spaces")
    return value


def _show(value: object, limit: int = 32) -> str:
    """A user-supplied value for an error message: quoted and cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- commands ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Move:
    """Continuous move at fractions (-1..1) of the camera's maximum speed."""

    cmd: ClassVar[str] = "move"
    pan: float = 0.0
    tilt: float = 0.0
    zoom: float = 0.0
    duration: float | None = None  # seconds; None: until stop, a new move or the dead-man

    def __post_init__(self) -> None:
        for axis in ("pan", "tilt", "zoom"):
            object.__setattr__(self, axis, _number(getattr(self, axis), axis, -1, 1))
        duration = _optional_number(self.duration, "duration", MIN_DURATION_S, MAX_DURATION_S)
        object.__setattr__(self, "duration", duration)

    @property
    def still(self) -> bool:
        """All velocities zero: the camera would stand still."""
        return not (self.pan or self.tilt or self.zoom)


@dataclass(frozen=True, slots=True)
class Stop:
    cmd: ClassVar[str] = "stop"
    pan_tilt: bool = True
    zoom: bool = True

    def __post_init__(self) -> None:
        _flag(self.pan_tilt, "pan_tilt")
        _flag(self.zoom, "zoom")
        if not (self.pan_tilt or self.zoom):
            raise CommandError("stop needs pan_tilt or zoom (or both) to be true")


@dataclass(frozen=True, slots=True)
class Relative:
    """Move by fractions (-1..1) of the range."""

    cmd: ClassVar[str] = "relative"
    pan: float = 0.0
    tilt: float = 0.0
    zoom: float = 0.0
    speed: float | None = None

    def __post_init__(self) -> None:
        for axis in ("pan", "tilt", "zoom"):
            object.__setattr__(self, axis, _number(getattr(self, axis), axis, -1, 1))
        object.__setattr__(self, "speed", _optional_number(self.speed, "speed", 0, 1))


@dataclass(frozen=True, slots=True)
class Absolute:
    """Move to pan/tilt in -1..1 and zoom in 0..1 of the range."""

    cmd: ClassVar[str] = "absolute"
    pan: float
    tilt: float
    zoom: float
    speed: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "pan", _number(self.pan, "pan", -1, 1))
        object.__setattr__(self, "tilt", _number(self.tilt, "tilt", -1, 1))
        object.__setattr__(self, "zoom", _number(self.zoom, "zoom", 0, 1))
        object.__setattr__(self, "speed", _optional_number(self.speed, "speed", 0, 1))


@dataclass(frozen=True, slots=True)
class GotoPreset:
    cmd: ClassVar[str] = "goto_preset"
    preset: str  # token or name

    def __post_init__(self) -> None:
        _name(self.preset, "preset")


@dataclass(frozen=True, slots=True)
class SetPreset:
    cmd: ClassVar[str] = "set_preset"
    name: str

    def __post_init__(self) -> None:
        _name(self.name, "name")


@dataclass(frozen=True, slots=True)
class RemovePreset:
    cmd: ClassVar[str] = "remove_preset"
    preset: str  # token or name

    def __post_init__(self) -> None:
        _name(self.preset, "preset")


@dataclass(frozen=True, slots=True)
class Home:
    cmd: ClassVar[str] = "home"
    speed: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "speed", _optional_number(self.speed, "speed", 0, 1))


@dataclass(frozen=True, slots=True)
class Refresh:
    """Keep a held move going (the dead-man timer) without resending it."""

    cmd: ClassVar[str] = "refresh"


@dataclass(frozen=True, slots=True)
class ListPresets:
    cmd: ClassVar[str] = "presets"


PtzCommand = (
    Move
    | Stop
    | Relative
    | Absolute
    | GotoPreset
    | SetPreset
    | RemovePreset
    | Home
    | Refresh
    | ListPresets
)
COMMANDS: dict[str, type[PtzCommand]] = {
    cls.cmd: cls
    for cls in (
        Move,
        Stop,
        Relative,
        Absolute,
        GotoPreset,
        SetPreset,
        RemovePreset,
        Home,
        Refresh,
        ListPresets,
    )
}


def command_to_json(command: PtzCommand, id: CommandId = None) -> dict[str, Any]:
    """The v1 JSON object for `command` (what parse_command reads back)."""
    data: dict[str, Any] = {"v": VERSION}
    if id is not None:
        data["id"] = id
    data["cmd"] = command.cmd
    for f in dataclasses.fields(command):
        value = getattr(command, f.name)
        if value is not None:
            data[f.name] = value
    return data


# --- parsing ----------------------------------------------------------------------------


def parse_command(data: bytes | str | object) -> tuple[CommandId, PtzCommand]:
    """(client id, command) from a v1 message: bytes/str JSON text or an already decoded
    object. Raises CommandError, carrying the client's id when it was readable."""
    if isinstance(data, bytes | bytearray | memoryview):
        data = _decode(bytes(data))
    if isinstance(data, str):
        data = load_message(data)
    if not isinstance(data, dict):
        raise CommandError("a command must be a JSON object")
    id = _client_id(data)
    try:
        return id, _build(data)
    except CommandError as exc:
        raise CommandError(exc.message, id) from None


def _decode(raw: bytes) -> str:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise CommandError(f"message too large (over {MAX_MESSAGE_BYTES} bytes)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError("message is not UTF-8 text") from None


def load_message(text: str) -> object:
    """Strict JSON: size-capped, no duplicate keys, no NaN/Infinity. Raises CommandError."""
    # Characters are 1-4 UTF-8 bytes: only count bytes when it could matter.
    if len(text) > MAX_MESSAGE_BYTES or (
        len(text) * 4 > MAX_MESSAGE_BYTES
        and len(text.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES
    ):
        raise CommandError(f"message too large (over {MAX_MESSAGE_BYTES} bytes)")
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_constant)
    except CommandError:
        raise
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise CommandError("message is not valid JSON") from None


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise CommandError("duplicate key in JSON object")
    return result


def _constant(name: str) -> object:
    raise CommandError(f"{name} is not a valid number: only finite numbers are accepted")


def _client_id(data: dict[str, Any]) -> CommandId:
    id = data.get("id")
    if id is None:
        return None
    if isinstance(id, str) and len(id) <= MAX_ID_CHARS:
        return id
    if isinstance(id, int) and not isinstance(id, bool) and abs(id) <= MAX_SAFE_INTEGER:
        return id
    raise CommandError(
        f"id must be a string of up to {MAX_ID_CHARS} characters or an integer "
        f"(at most {MAX_SAFE_INTEGER} in magnitude)"
    )


def _build(data: dict[str, Any]) -> PtzCommand:
    if "v" not in data:
        raise CommandError(f"missing v (the protocol version, {VERSION})")
    version = data["v"]
    if type(version) is not int or version != VERSION:  # not True, not 1.0
        raise CommandError(f"unsupported version {_show(version)}: camgate speaks v {VERSION}")
    if "cmd" not in data:
        raise CommandError("missing cmd")
    name = data["cmd"]
    if not isinstance(name, str):
        raise CommandError("cmd must be a string")
    cls = COMMANDS.get(name)
    if cls is None:
        raise CommandError(f"unknown command {_show(name)} (known: {', '.join(COMMANDS)})")
    fields = {k: v for k, v in data.items() if k not in ENVELOPE_FIELDS}
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise CommandError(f"unknown field {_show(unknown[0])} for {name}")
    missing = [
        f.name
        for f in known.values()
        if f.name not in fields
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise CommandError(f"{name} needs {', '.join(missing)}")
    return cls(**fields)


# --- replies ----------------------------------------------------------------------------


def ok_reply(id: CommandId, **extra: Any) -> dict[str, Any]:
    return {"v": VERSION, "id": id, "ok": True, **extra}


def error_reply(id: CommandId, message: str) -> dict[str, Any]:
    return {"v": VERSION, "id": id, "ok": False, "error": message}

"""MQTT payloads in and out. Pure: no I/O.

PTZ commands arrive in two forms on `<prefix>/<camera>/ptz`:
- Frigate's words, case-insensitive: MOVE_LEFT|RIGHT|UP|DOWN, ZOOM_IN|ZOOM_OUT, STOP,
  preset_<name>, move_relative_<pan>_<tilt>[_<zoom>]. A Frigate automation works by
  changing only its topic prefix.
- JSON in the data channel's vocabulary (docs/ptz.md), `v` optional:
  {"cmd": "move", "pan": -0.5, "duration": 2}.
Continuous moves from MQTT always end: nobody holds a button to refresh them, so every
move lasts `move_timeout` at most (a STOP ends it sooner).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from gateway.camera_status import CameraState, CameraStatus
from gateway.ptz.commands import (
    MAX_MESSAGE_BYTES,
    VERSION,
    CommandError,
    CommandId,
    GotoPreset,
    Move,
    PtzCommand,
    Relative,
    Stop,
    load_message,
    parse_command,
)

FRIGATE_MOVES = {
    # word: (pan, tilt, zoom) direction
    "move_left": (-1, 0, 0),
    "move_right": (1, 0, 0),
    "move_up": (0, 1, 0),
    "move_down": (0, -1, 0),
    "zoom_in": (0, 0, 1),
    "zoom_out": (0, 0, -1),
}
PRESET_PREFIX = "preset_"
RELATIVE_PREFIX = "move_relative_"
SHOWN_PAYLOAD_CHARS = 64


def parse_ptz_payload(
    payload: bytes, *, move_speed: float, move_timeout: float
) -> tuple[CommandId, PtzCommand]:
    """(client id, command) from a message on the ptz topic. Raises CommandError."""
    if len(payload) > MAX_MESSAGE_BYTES:
        raise CommandError(f"payload too large (over {MAX_MESSAGE_BYTES} bytes)")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CommandError("payload is not UTF-8 text") from None
    if not text:
        raise CommandError("empty payload: send e.g. MOVE_LEFT, STOP or a JSON command")
    if text.startswith("{"):
        id, command = _json_command(text)
    else:
        id, command = None, _frigate_command(text, move_speed, move_timeout)
    return id, _bounded(command, move_timeout)


def _frigate_command(text: str, speed: float, timeout: float) -> PtzCommand:
    word = text.lower()
    if word == "stop":
        return Stop()
    if word in FRIGATE_MOVES:
        pan, tilt, zoom = (speed * d for d in FRIGATE_MOVES[word])
        return Move(pan=pan, tilt=tilt, zoom=zoom, duration=timeout)
    if word.startswith(PRESET_PREFIX):
        # The name as sent: Frigate lowercases it, camgate matches names ignoring case.
        return GotoPreset(text[len(PRESET_PREFIX) :])
    if word.startswith(RELATIVE_PREFIX):
        return _relative(text[len(RELATIVE_PREFIX) :])
    raise CommandError(
        f"unknown command {show_payload(text)} (MOVE_LEFT|RIGHT|UP|DOWN, ZOOM_IN|OUT, STOP, "
        "preset_<name>, move_relative_<pan>_<tilt>[_<zoom>] or JSON)"
    )


def _relative(rest: str) -> Relative:
    parts = rest.split("_")
    if len(parts) not in (2, 3):
        raise CommandError("move_relative needs <pan>_<tilt> or <pan>_<tilt>_<zoom>")
    values = []
    for axis, part in zip(("pan", "tilt", "zoom"), parts, strict=False):
        try:
            value = float(part)
        except ValueError:
            raise CommandError(f"move_relative: {axis} {show_payload(part)} is no number") from None
        if not math.isfinite(value):
            raise CommandError(f"move_relative: {axis} must be a finite number")
        values.append(value)
    return Relative(*values)


def _json_command(text: str) -> tuple[CommandId, PtzCommand]:
    data = load_message(text)
    if isinstance(data, dict) and "v" not in data:
        data = {"v": VERSION, **data}  # MQTT users needn't repeat the version
    return parse_command(data)


def _bounded(command: PtzCommand, move_timeout: float) -> PtzCommand:
    """Every continuous move from MQTT ends by itself within `move_timeout`."""
    if isinstance(command, Move) and not command.still:
        wanted = command.duration if command.duration is not None else move_timeout
        return dataclasses.replace(command, duration=min(wanted, move_timeout))
    return command


def show_payload(value: bytes | str) -> str:
    """A payload for a log line or error message: printable, cut short."""
    if isinstance(value, bytes):
        value = value[: SHOWN_PAYLOAD_CHARS * 4].decode("utf-8", "backslashreplace")
    text = repr(value)
    return text if len(text) <= SHOWN_PAYLOAD_CHARS else text[: SHOWN_PAYLOAD_CHARS - 3] + "..."


def camera_state(status: CameraStatus, *, gateway: str) -> dict[str, Any]:
    """The retained `<camera>/state` JSON; never a credential. Rates are rounded so the
    message only changes when something visible does. `gateway` (the node id) marks whose
    it is: only that gateway ever clears it."""
    return {
        "gateway": gateway,
        "state": status.state.value,
        "online": status.state is not CameraState.OFFLINE,
        "error": status.error,
        "width": status.width,
        "height": status.height,
        "fps": round(status.fps),
        "bitrate_kbps": int(round(status.bitrate_kbps, -1)),
        "viewers": status.viewers,
        "audio": status.audio_output,  # what viewers hear (e.g. "OPUS"), null: no sound
        # main, and sub where the camera has one; rounded like the camera's own rates.
        "streams": [
            s.to_json() | {"fps": round(s.fps), "bitrate_kbps": int(round(s.bitrate_kbps, -1))}
            for s in status.streams
        ],
    }

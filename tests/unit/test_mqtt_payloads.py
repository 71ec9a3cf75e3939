"""MQTT PTZ payloads: Frigate's words and JSON, bounded moves, readable errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.camera_status import CameraState
from gateway.mqtt.payloads import camera_state, parse_ptz_payload, show_payload
from gateway.ptz.commands import (
    CommandError,
    GotoPreset,
    Home,
    Move,
    PtzCommand,
    Relative,
    Stop,
)
from tests.unit.statuses import camera_status

SPEED, TIMEOUT = 0.5, 10.0


def parse(payload: str | bytes) -> PtzCommand:
    raw = payload.encode() if isinstance(payload, str) else payload
    return parse_ptz_payload(raw, move_speed=SPEED, move_timeout=TIMEOUT)[1]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("MOVE_LEFT", Move(pan=-SPEED, duration=TIMEOUT)),
        ("move_right", Move(pan=SPEED, duration=TIMEOUT)),
        ("Move_Up", Move(tilt=SPEED, duration=TIMEOUT)),
        ("MOVE_DOWN\n", Move(tilt=-SPEED, duration=TIMEOUT)),
        ("ZOOM_IN", Move(zoom=SPEED, duration=TIMEOUT)),
        ("zoom_out", Move(zoom=-SPEED, duration=TIMEOUT)),
        ("STOP", Stop()),
        (" stop ", Stop()),
        ("preset_porch", GotoPreset("porch")),
        ("PRESET_Front door", GotoPreset("Front door")),
        ("preset_a_b", GotoPreset("a_b")),
        ("move_relative_0.1_-0.2", Relative(pan=0.1, tilt=-0.2)),
        ("MOVE_RELATIVE_-1_1_0.5", Relative(pan=-1, tilt=1, zoom=0.5)),
    ],
)
def test_frigate_payloads(payload: str, expected: PtzCommand) -> None:
    assert parse(payload) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ('{"cmd": "move", "pan": 0.3}', Move(pan=0.3, duration=TIMEOUT)),
        ('{"v": 1, "cmd": "move", "tilt": -1, "duration": 2}', Move(tilt=-1, duration=2)),
        ('{"cmd": "move", "zoom": 1, "duration": 60}', Move(zoom=1, duration=TIMEOUT)),
        ('{"cmd": "move", "pan": 0}', Stop()),
        ('{"cmd": "goto_preset", "preset": "1"}', GotoPreset("1")),
        ('{"cmd": "home", "speed": 0.5}', Home(speed=0.5)),
    ],
)
def test_json_payloads_share_the_data_channel_vocabulary(
    payload: str, expected: PtzCommand
) -> None:
    command = parse(payload)
    # A still move is the controller's to turn into Stop; the parser keeps it as sent.
    if isinstance(expected, Stop):
        assert isinstance(command, Move) and command.still
    else:
        assert command == expected


def test_json_id_comes_back() -> None:
    id, _ = parse_ptz_payload(b'{"id": "a1", "cmd": "stop"}', move_speed=1, move_timeout=1)
    assert id == "a1"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty payload"),
        (b"   ", "empty payload"),
        (b"\xff\xfe", "not UTF-8"),
        (b"x" * 5000, "too large"),
        (b"MOVE_SIDEWAYS", "unknown command 'MOVE_SIDEWAYS'"),
        (b"preset_", "preset must be 1-64 characters"),
        (b"move_relative_1", "move_relative needs"),
        (b"move_relative_a_b", "pan 'a' is no number"),
        (b"move_relative_nan_0", "finite"),
        (b"move_relative_2_0", "pan must be between -1 and 1"),
        (b'{"cmd": "move", "pan": "left"}', "pan must be a number"),
        (b'{"cmd": "move", "pan": 1', "not valid JSON"),
        (b'{"cmd": "stop", "cmd": "move"}', "duplicate key"),
        (b'{"v": 2, "cmd": "stop"}', "unsupported version"),
        (b'{"cmd": "fly"}', "unknown command 'fly'"),
    ],
)
def test_bad_payloads_get_readable_errors(payload: bytes, message: str) -> None:
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        parse(payload)


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_payload_parses_or_raises_command_error(payload: bytes) -> None:
    try:
        command = parse(payload)
    except CommandError as exc:
        assert exc.message
    else:
        if isinstance(command, Move) and not command.still:
            assert command.duration is not None and command.duration <= TIMEOUT


def test_show_payload_is_short_and_printable() -> None:
    shown = show_payload(b"\x00\xff" + b"a" * 500)
    assert len(shown) <= 64 and shown.isprintable()


def test_camera_state_rounds_rates_and_has_no_source() -> None:
    status = camera_status(source="rtsp://cam/stream")
    state = camera_state(status, gateway="camgate-1a2b3c4d")
    assert state == {
        "gateway": "camgate-1a2b3c4d",
        "state": "live",
        "online": True,
        "error": None,
        "width": 1920,
        "height": 1080,
        "fps": 30,
        "bitrate_kbps": 4010,
        "viewers": 2,
        "audio": None,
        "streams": [
            {
                "name": "main",
                "width": 1920,
                "height": 1080,
                "fps": 30,
                "bitrate_kbps": 4010,
                "profile": "High",
                "state": "live",
            },
            {
                "name": "sub",
                "width": 640,
                "height": 360,
                "fps": 0,
                "bitrate_kbps": 0,
                "profile": None,
                "state": "idle",
            },
        ],
    }
    offline = camera_status(state=CameraState.OFFLINE, error="connection refused")
    assert camera_state(offline, gateway="g")["online"] is False
    assert camera_state(offline, gateway="g")["error"] == "connection refused"
    assert "rtsp" not in json.dumps(state)

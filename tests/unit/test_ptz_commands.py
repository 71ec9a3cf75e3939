"""The PTZ command parser: strict, never raises anything but CommandError."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ptz.commands import (
    COMMANDS,
    MAX_MESSAGE_BYTES,
    Absolute,
    CommandError,
    GotoPreset,
    Home,
    ListPresets,
    Move,
    PtzCommand,
    Refresh,
    Relative,
    RemovePreset,
    SetPreset,
    Stop,
    command_to_json,
    error_reply,
    ok_reply,
    parse_command,
)


def parse(obj: Any) -> tuple[Any, PtzCommand]:
    return parse_command(json.dumps(obj))


def error_of(data: Any) -> CommandError:
    with pytest.raises(CommandError) as info:
        parse_command(data)
    return info.value


# --- examples ---------------------------------------------------------------------------


def test_move_with_defaults_and_id() -> None:
    assert parse({"v": 1, "id": 7, "cmd": "move", "pan": 0.5}) == (7, Move(pan=0.5))
    assert parse({"v": 1, "cmd": "move", "tilt": -1, "duration": 2}) == (
        None,
        Move(tilt=-1.0, duration=2.0),
    )


def test_every_command_parses() -> None:
    cases: list[tuple[dict[str, Any], PtzCommand]] = [
        ({"cmd": "stop"}, Stop()),
        ({"cmd": "stop", "zoom": False}, Stop(pan_tilt=True, zoom=False)),
        ({"cmd": "relative", "pan": 0.1, "speed": 0.5}, Relative(pan=0.1, speed=0.5)),
        ({"cmd": "absolute", "pan": 0, "tilt": 1, "zoom": 0.5}, Absolute(0.0, 1.0, 0.5)),
        ({"cmd": "goto_preset", "preset": "Porch"}, GotoPreset("Porch")),
        ({"cmd": "set_preset", "name": "Gate 2"}, SetPreset("Gate 2")),
        ({"cmd": "remove_preset", "preset": "3"}, RemovePreset("3")),
        ({"cmd": "home"}, Home()),
        ({"cmd": "home", "speed": None}, Home()),
        ({"cmd": "refresh"}, Refresh()),
        ({"cmd": "presets"}, ListPresets()),
    ]
    for fields, expected in cases:
        assert parse({"v": 1, **fields}) == (None, expected)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"\xff\xfe", "not UTF-8"),
        ("{", "not valid JSON"),
        ("[1]", "must be a JSON object"),
        ('"move"', "must be a JSON object"),
        ("{}", "missing v"),
        ('{"v": 2, "cmd": "stop"}', "unsupported version 2"),
        ('{"v": true, "cmd": "stop"}', "unsupported version True"),
        ('{"v": 1.0, "cmd": "stop"}', "unsupported version 1.0"),
        ('{"v": 1}', "missing cmd"),
        ('{"v": 1, "cmd": 3}', "cmd must be a string"),
        ('{"v": 1, "cmd": "dance"}', "unknown command 'dance'"),
        ('{"v": 1, "cmd": "move", "speed": 1}', "unknown field 'speed' for move"),
        ('{"v": 1, "cmd": "move", "pan": true}', "pan must be a number"),
        ('{"v": 1, "cmd": "move", "pan": "1"}', "pan must be a number"),
        ('{"v": 1, "cmd": "move", "pan": null}', "pan must be a number"),
        ('{"v": 1, "cmd": "move", "pan": NaN}', "NaN is not a valid number"),
        ('{"v": 1, "cmd": "move", "pan": -Infinity}', "-Infinity is not a valid number"),
        ('{"v": 1, "cmd": "move", "pan": 1e999}', "pan must be a finite number"),
        ('{"v": 1, "cmd": "move", "pan": 1.0001}', "pan must be between -1 and 1"),
        ('{"v": 1, "cmd": "move", "zoom": 10000000000000000000000}', "between -1 and 1"),
        ('{"v": 1, "cmd": "move", "pan": 1, "duration": 0.05}', "duration must be between"),
        ('{"v": 1, "cmd": "move", "pan": 1, "duration": 61}', "duration must be between"),
        ('{"v": 1, "cmd": "stop", "zoom": 0}', "zoom must be true or false"),
        ('{"v": 1, "cmd": "stop", "zoom": false, "pan_tilt": false}', "needs pan_tilt or zoom"),
        ('{"v": 1, "cmd": "absolute", "pan": 0}', "absolute needs tilt, zoom"),
        (
            '{"v": 1, "cmd": "absolute", "pan": 0, "tilt": 0, "zoom": -0.1}',
            "zoom must be between 0",
        ),
        ('{"v": 1, "cmd": "relative", "speed": 2}', "speed must be between 0 and 1"),
        ('{"v": 1, "cmd": "set_preset"}', "set_preset needs name"),
        ('{"v": 1, "cmd": "set_preset", "name": ""}', "name must be 1-64 characters"),
        ('{"v": 1, "cmd": "set_preset", "name": "   "}', "not only spaces"),
        ('{"v": 1, "cmd": "set_preset", "name": "a\\nb"}', "printable"),
        ('{"v": 1, "cmd": "set_preset", "name": "\\ud800"}', "printable"),
        ('{"v": 1, "cmd": "goto_preset", "preset": 3}', "preset must be a string"),
        ('{"v": 1, "cmd": "stop", "cmd": "stop"}', "duplicate key"),
        ('{"v": 1, "cmd": "stop", "id": [1]}', "id must be a string"),
        ('{"v": 1, "cmd": "stop", "id": true}', "id must be a string"),
        ('{"v": 1, "cmd": "stop", "id": 9007199254740992}', "id must be a string"),
        ("[" * 2040 + "]" * 2040, "not valid JSON"),
    ],
)
def test_rejections_are_readable(message: str | bytes, expected: str) -> None:
    assert expected in error_of(message).message


def test_error_carries_the_id_when_readable() -> None:
    assert error_of('{"v": 1, "id": "a1", "cmd": "dance"}').id == "a1"
    assert error_of('{"v": 1, "id": 5, "cmd": "move", "pan": 2}').id == 5
    assert error_of('{"v": 1, "id": [5], "cmd": "stop"}').id is None


def test_size_cap_counts_bytes() -> None:
    padding = " " * (MAX_MESSAGE_BYTES - len('{"v":1,"cmd":"stop"}'))
    assert parse_command('{"v":1,"cmd":"stop"}' + padding) == (None, Stop())
    assert "too large" in error_of('{"v":1,"cmd":"stop"}' + padding + " ").message
    # 1366 three-byte characters are 4098 bytes
    assert "too large" in error_of('{"v":1,"cmd":"stop","x":"' + "€" * 1366 + '"}').message
    assert "too large" in error_of(b" " * (MAX_MESSAGE_BYTES + 1)).message


def test_decoded_objects_and_bytes_are_accepted() -> None:
    assert parse_command({"v": 1, "cmd": "stop"}) == (None, Stop())
    assert parse_command(bytearray(b'{"v":1,"cmd":"stop"}')) == (None, Stop())
    assert "finite" in error_of({"v": 1, "cmd": "move", "pan": float("nan")}).message
    assert "must be a JSON object" in error_of(None).message


def test_commands_validate_themselves_for_other_callers() -> None:
    # What MQTT's Frigate payloads will build directly.
    assert Move(pan=-1) == Move(pan=-1.0, tilt=0.0, zoom=0.0)
    with pytest.raises(CommandError, match="pan must be between"):
        Move(pan=-2)
    with pytest.raises(CommandError, match="preset must be 1-64"):
        GotoPreset("x" * 65)


def test_replies() -> None:
    assert ok_reply(3) == {"v": 1, "id": 3, "ok": True}
    assert ok_reply("a", presets=[]) == {"v": 1, "id": "a", "ok": True, "presets": []}
    assert error_reply(None, "no") == {"v": 1, "id": None, "ok": False, "error": "no"}


# --- properties -------------------------------------------------------------------------

unit = st.floats(-1, 1, allow_nan=False)
fraction = st.floats(0, 1, allow_nan=False)
names = st.text(min_size=1, max_size=64).filter(lambda s: s.isprintable() and s.strip() != "")
commands: st.SearchStrategy[PtzCommand] = st.one_of(
    st.builds(
        Move,
        pan=unit,
        tilt=unit,
        zoom=unit,
        duration=st.none() | st.floats(0.1, 60, allow_nan=False),
    ),
    st.sampled_from([Stop(), Stop(True, False), Stop(False, True)]),
    st.builds(Relative, pan=unit, tilt=unit, zoom=unit, speed=st.none() | fraction),
    st.builds(Absolute, pan=unit, tilt=unit, zoom=fraction, speed=st.none() | fraction),
    st.builds(GotoPreset, preset=names),
    st.builds(SetPreset, name=names),
    st.builds(RemovePreset, preset=names),
    st.builds(Home, speed=st.none() | fraction),
    st.just(Refresh()),
    st.just(ListPresets()),
)
ids = st.none() | st.text(max_size=64) | st.integers(-(2**53) + 1, 2**53 - 1)


@given(commands, ids)
def test_valid_commands_round_trip(command: PtzCommand, id: Any) -> None:
    message = command_to_json(command, id)
    assert parse_command(json.dumps(message)) == (id, command)
    assert parse_command(json.dumps(message).encode()) == (id, command)
    assert parse_command(message) == (id, command)


@settings(max_examples=500)
@given(st.binary(max_size=MAX_MESSAGE_BYTES + 64))
def test_arbitrary_bytes_only_raise_command_error(data: bytes) -> None:
    with contextlib.suppress(CommandError):
        parse_command(data)


@settings(max_examples=500)
@given(st.text(max_size=2000))
def test_arbitrary_text_only_raises_command_error(text: str) -> None:
    with contextlib.suppress(CommandError):
        parse_command(text)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(list(COMMANDS)),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    ["pan", "tilt", "zoom", "duration", "speed", "pan_tilt", "preset", "name", "id", "x"]
)


@settings(max_examples=1000)
@given(
    st.sampled_from([*COMMANDS, "nope"]),
    st.dictionaries(field_names, json_values, max_size=5),
    st.sampled_from([1, 1, 1, 2, True, "1", None]),
)
def test_near_miss_commands_only_raise_command_error(
    cmd: str, fields: dict[str, Any], version: Any
) -> None:
    message = {"v": version, "cmd": cmd, **fields}
    for data in (message, json.dumps(message)):
        try:
            _, command = parse_command(data)
        except CommandError as exc:
            assert exc.message
        else:
            assert type(command) is COMMANDS[cmd]


@settings(max_examples=300)
@given(json_values)
def test_arbitrary_json_only_raises_command_error(value: Any) -> None:
    with contextlib.suppress(CommandError):
        parse_command(json.dumps(value))

"""CameraStatus: its JSON is the API's camera object (the viewer reads it), and
docs/architecture.md shows the same object and the same states."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from gateway.camera_status import CameraState
from tests.unit.statuses import camera_status

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
# The camera object's keys, in the order the API has always sent them.
API_KEYS = [
    "name",
    "state",
    "error",
    "warning",
    "codec",
    "profile",
    "profile_level_id",
    "level",
    "width",
    "height",
    "fps",
    "bitrate_kbps",
    "gop_frames",
    "viewers",
    "dropped_frames",
    "reconnects",
    "limit_drops",
    "discontinuities",
    "source",
    "audio_codec",
    "audio_rate",
    "audio_channels",
    "audio_output",
    "audio_refused",
    "listeners",
    "talk",
    "talk_codec",
    "streams",
]


def test_json_is_the_api_camera_object() -> None:
    status = camera_status(state=CameraState.RECONNECTING, error="connection refused")
    data = status.to_json()
    assert list(data) == API_KEYS  # frames_received is for /metrics only
    assert type(data["state"]) is str and data["state"] == "reconnecting"
    assert json.loads(json.dumps(data)) == data
    assert data["error"] == "connection refused" and data["bitrate_kbps"] == 4012.4


def test_streams_are_listed_by_name_with_their_state_as_text() -> None:
    streams = camera_status().to_json()["streams"]
    assert [s["name"] for s in streams] == ["main", "sub"]
    assert streams[1] == {
        "name": "sub",
        "width": 640,
        "height": 360,
        "fps": 0.0,
        "bitrate_kbps": 0.0,
        "profile": None,
        "state": "idle",
    }


def test_status_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        camera_status().viewers = 3  # type: ignore[misc]


def test_the_documented_camera_object_and_states_are_the_codes() -> None:
    text = ARCHITECTURE.read_text()
    block = re.search(r"Camera object.*?```json\n(.*?)```", text, re.S)
    assert block is not None
    documented = json.loads(block.group(1))
    assert list(documented) == [*API_KEYS, "whep_url", "ptz"]
    states = re.search(r"`state` is one of (.*?) \(`CameraState`\)", text, re.S)
    assert states is not None
    assert re.findall(r"`(\w+)`", states.group(1)) == [s.value for s in CameraState]

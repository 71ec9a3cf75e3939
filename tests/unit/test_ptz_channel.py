"""The "ptz" data channel handler with a stand-in channel: every message gets one reply."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from gateway.ptz.channel import PtzChannel
from gateway.ptz.controller import PtzController
from tests.unit.test_ptz_controller import FakeBackend


class FakeChannel:
    def __init__(self) -> None:
        self.readyState = "open"
        self.sent: list[dict[str, Any]] = []
        self.handlers: dict[str, Callable[..., Any]] = {}
        self.changed = asyncio.Event()

    def on(self, event: str, f: Callable[..., Any]) -> None:
        self.handlers[event] = f

    def send(self, data: str) -> None:
        self.sent.append(json.loads(data))
        self.changed.set()

    def receive(self, message: str | bytes) -> None:
        self.handlers["message"](message)

    async def replies(self, n: int) -> list[dict[str, Any]]:
        async with asyncio.timeout(10):
            while len(self.sent) < n:
                self.changed.clear()
                await self.changed.wait()
        return self.sent


async def test_commands_bad_messages_and_binary_all_get_replies() -> None:
    backend = FakeBackend()
    controller = PtzController(backend, "cam")
    channel = FakeChannel()
    PtzChannel(channel, controller, owner="session-1")
    channel.receive('{"v": 1, "id": 1, "cmd": "move", "pan": 0.5}')
    channel.receive('{"v": 1, "id": 2, "cmd": "move", "pan": 5}')
    channel.receive(b'{"v": 1, "id": 3, "cmd": "stop"}')
    replies = await channel.replies(3)
    by_id = {r["id"]: r for r in replies}
    assert by_id[1] == {"v": 1, "id": 1, "ok": True}
    assert by_id[2]["error"] == "pan must be between -1 and 1"
    assert by_id[None]["error"] == "send commands as JSON text messages, not binary"
    assert backend.calls == [("move", 0.5, 0.0, 0.0)]
    assert controller.moving

    channel.handlers["close"]()  # the viewer closed the channel: its move stops
    await backend.wait_calls(2)
    assert backend.calls[1] == ("stop", True, True)
    await controller.close()


async def test_a_camera_without_ptz_answers_so() -> None:
    channel = FakeChannel()
    handler = PtzChannel(channel, None, owner="session-1")
    channel.receive('{"v": 1, "id": "a", "cmd": "home"}')
    assert channel.sent == [{"v": 1, "id": "a", "ok": False, "error": "this camera has no PTZ"}]
    handler.release()  # nothing to release, no error


async def test_no_reply_once_the_channel_closed() -> None:
    backend = FakeBackend()
    backend.hold()
    controller = PtzController(backend, "cam")
    channel = FakeChannel()
    PtzChannel(channel, controller, owner="s")
    channel.receive('{"v": 1, "id": 1, "cmd": "home"}')
    await backend.wait_calls(1)
    channel.readyState = "closed"
    backend.release_calls()
    await controller.close()
    assert channel.sent == []


async def test_a_revoked_credential_steers_no_more_and_its_move_stops() -> None:
    backend = FakeBackend()
    controller = PtzController(backend, "cam")
    channel = FakeChannel()
    still_valid = [True]
    PtzChannel(channel, controller, owner="s", authorised=lambda: still_valid[0])
    channel.receive('{"v": 1, "id": 1, "cmd": "move", "pan": 0.5}')
    await channel.replies(1)
    still_valid[0] = False  # e.g. `camgate token revoke` of the token that opened it
    channel.receive('{"v": 1, "id": 2, "cmd": "move", "pan": -0.5}')
    replies = await channel.replies(2)
    assert replies[1] == {"v": 1, "id": 2, "ok": False, "error": "access revoked: sign in again"}
    await backend.wait_calls(2)
    assert backend.calls == [("move", 0.5, 0.0, 0.0), ("stop", True, True)]
    await controller.close()

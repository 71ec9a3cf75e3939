"""The viewer's "ptz" data channel: one JSON command per message, one JSON reply each.

The browser opens the channel on its own peer connection (it is the offerer); aiortc
announces it with the peer connection's "datachannel" event. Nothing a viewer sends can
raise here: bad messages get an error reply, and the gateway carries on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from gateway.ptz.commands import (
    CommandError,
    CommandId,
    Move,
    PtzCommand,
    error_reply,
    parse_command,
)
from gateway.ptz.controller import PtzController
from gateway.tasks import spawn

log = logging.getLogger("camgate.ptz")

LABEL = "ptz"
NO_PTZ = "this camera has no PTZ"
BINARY = "send commands as JSON text messages, not binary"
NOT_ALLOWED = "this account may watch but not steer"
REVOKED = "access revoked: sign in again"


class DataChannel(Protocol):
    """The part of aiortc's RTCDataChannel used here."""

    @property
    def readyState(self) -> str: ...

    def send(self, data: str) -> None: ...

    def on(self, event: str, f: Callable[..., Any]) -> Any: ...


class PtzChannel:
    """Serves one viewer's "ptz" channel; `owner` (the WHEP session id) owns its moves."""

    def __init__(
        self,
        channel: DataChannel,
        controller: PtzController | None,
        owner: str,
        allowed: bool = True,
        authorised: Callable[[], bool] = lambda: True,
    ) -> None:
        self.channel = channel
        self.controller = controller
        self.allowed = allowed  # the account that opened the peer connection may steer
        # Its credential still stands (not revoked, password unchanged): asked per command.
        self.authorised = authorised
        self.owner = owner
        self.received = 0
        self.rejected = 0
        self._released = False
        channel.on("message", self._on_message)
        channel.on("close", self.release)

    def release(self) -> None:
        """The viewer is gone: stop its move. Idempotent."""
        if not self._released:
            self._released = True
            if self.controller is not None:
                self.controller.release(self.owner)

    def _on_message(self, message: str | bytes) -> None:
        received_at = time.monotonic()  # the latency benchmark's start
        self.received += 1
        if not isinstance(message, str):
            self._reject(None, BINARY)
            return
        try:
            id, command = parse_command(message)
        except CommandError as exc:
            self._reject(exc.id, exc.message)
            return
        if not self.authorised():
            self._reject(id, REVOKED)
            self.release()
            return
        if not self.allowed:
            self._reject(id, NOT_ALLOWED)
            return
        if self.controller is None:
            self._reject(id, NO_PTZ)
            return
        spawn(self._execute(self.controller, id, command, received_at), f"ptz:{self.owner[:8]}")

    async def _execute(
        self, controller: PtzController, id: CommandId, command: PtzCommand, received_at: float
    ) -> None:
        # A button held down sends a move without duration and refreshes it: the dead-man
        # applies. A move with a duration is a timed nudge and ends by itself.
        held = isinstance(command, Move) and command.duration is None
        try:
            reply = await controller.execute(
                command, self.owner, id=id, held=held, received_at=received_at
            )
        except Exception:
            log.exception("PTZ command %s failed", command.cmd)
            reply = error_reply(id, "PTZ error (see the gateway log)")
        self._send(reply)

    def _reject(self, id: CommandId, message: str) -> None:
        self.rejected += 1
        self._send(error_reply(id, message))

    def _send(self, reply: dict[str, Any]) -> None:
        if self.channel.readyState != "open":
            return  # the viewer left before the answer: nobody to tell
        try:
            self.channel.send(json.dumps(reply))
        except Exception as exc:  # closed between the check and the send
            log.debug("PTZ reply not sent: %s", exc)

"""The viewer's "stream" data channel: which of the camera's streams it gets, and why.

Browser -> gateway, JSON text: `{"type": "view", "view": "grid" | "full"}` and
`{"type": "pin", "pin": "auto" | "main" | "sub"}`; anything else is ignored with a debug
log line (the viewer's video carries on). Gateway -> browser, on open, on every change
and every STATUS_INTERVAL_S while open: `{"type": "stream", "current", "pin", "view",
"streams", "reason", "estimate"}` (docs/streams.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from gateway.feed import PINS, VIEWS, ViewerFeed
from gateway.ptz.channel import DataChannel

log = logging.getLogger("camgate.webrtc")

LABEL = "stream"
STATUS_INTERVAL_S = 2.0
MAX_MESSAGE_CHARS = 1024


def parse_request(message: str | bytes) -> tuple[str, str] | None:
    """("view", "grid"|"full") or ("pin", "auto"|"main"|"sub") from a viewer's message;
    None for anything else. Pure."""
    if not isinstance(message, str) or len(message) > MAX_MESSAGE_CHARS:
        return None
    try:
        data = json.loads(message)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    kind = data.get("type")
    value = data.get(kind) if isinstance(kind, str) else None
    if kind == "view" and value in VIEWS:
        return "view", value
    if kind == "pin" and value in PINS:
        return "pin", value
    return None


class StreamChannel:
    """Serves one viewer's "stream" channel for its feed. `estimate()` is the viewer's
    path estimate as JSON (None until there is one)."""

    def __init__(
        self,
        channel: DataChannel,
        feed: ViewerFeed,
        estimate: Callable[[], dict[str, Any] | None] = lambda: None,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.channel = channel
        self.feed = feed
        self.estimate = estimate
        self.on_change = on_change  # after a view or pin change (the session's audio hold)
        self.ignored = 0
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        channel.on("message", self._on_message)
        channel.on("close", self.close)
        self.send_status()

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def status(self) -> dict[str, Any]:
        feed = self.feed
        try:
            estimate = self.estimate()
        except Exception:  # the estimate is extra: never let it break the status
            log.exception("stream channel: the path estimate failed")
            estimate = None
        return {
            "type": "stream",
            "current": feed.current,
            "pin": feed.pin,
            "view": feed.view,
            "streams": feed.streams(),
            "reason": feed.reason,
            "estimate": estimate,
        }

    def send_status(self) -> None:
        """Now, and again every STATUS_INTERVAL_S while the channel is open."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._closed or self.channel.readyState != "open":
            return
        try:
            self.channel.send(json.dumps(self.status()))
        except Exception as exc:  # closed between the check and the send
            log.debug("stream status not sent: %s", exc)
            return
        self._timer = asyncio.get_running_loop().call_later(STATUS_INTERVAL_S, self.send_status)

    def _on_message(self, message: str | bytes) -> None:
        request = parse_request(message)
        if request is None:
            self.ignored += 1
            log.debug("stream channel: ignoring a message that is not a view or pin request")
            return
        kind, value = request
        if kind == "view":
            self.feed.set_view(value)  # type: ignore[arg-type]
        else:
            self.feed.set_pin(value)  # type: ignore[arg-type]
        self.on_change()
        self.send_status()

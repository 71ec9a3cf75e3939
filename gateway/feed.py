"""A viewer's switchable feed: the camera's main or sub stream, on one track.

PassthroughTrack reads a ViewerFeed instead of one Subscription, so both send paths (and
the send workers) switch with it, on the same peer connection, RTP sequence and SSRC. A
switch subscribes to the target stream's hub and starts at its cached keyframe (the
cached GOP, squashed like a join, so the switch is immediate), continues the output
timestamps from the last one sent, and drops the old subscription. A target that is down
or missing is not switched to: the viewer stays on (or falls back to) the other stream,
reason `unavailable`, and returns when the target is live again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, get_args

from gateway.camera_status import CameraState
from gateway.media.accessunit import VIDEO_CLOCK_RATE, AccessUnit
from gateway.media.h264 import NAL_PPS, NAL_SPS, nal_type
from gateway.pacing import BurstPacer
from gateway.subscription import OutputFrame, Subscription, SubscriptionClosed

if TYPE_CHECKING:
    from gateway.hub import CameraHub

log = logging.getLogger("camgate.feed")

StreamName = Literal["main", "sub"]
Pin = Literal["auto", "main", "sub"]
View = Literal["grid", "full"]
Reason = Literal["view", "pin", "congestion", "recovered", "unavailable"]

VIEWS: tuple[str, ...] = get_args(View)
PINS: tuple[str, ...] = get_args(Pin)
REASONS: tuple[str, ...] = get_args(Reason)
# How long a live target may take to send the keyframe a switch starts at (a camera with
# a long GOP that makes keyframes on request); after that the switch is given up.
KEYFRAME_WAIT_S = 10.0
# A move to the sub stream for congestion is paced for the path that was just found too
# slow: the cached GOP and what queues behind it go out at this multiple of the stream's
# measured bitrate (at least SLOW_PATH_MIN_KBPS) until caught up, not at the join rate,
# which a slow link would mostly drop (the keyframe's retransmissions with it: the picture
# would stand still until the stream's next keyframe). Not measured yet: the join rate.
SLOW_PATH_PACE = 1.5
SLOW_PATH_MIN_KBPS = 300.0
SLOW_PATH_ALLOWANCE_BYTES = 4000
_DOWN = (CameraState.OFFLINE, CameraState.RECONNECTING)


class Retimer:
    """Output timestamps (90 kHz) that continue across switches: the first picture of a
    new stream comes one frame interval after the last one sent, and the stream's own
    spacing follows. Pure: no I/O, no clock."""

    def __init__(self, interval: int = VIDEO_CLOCK_RATE // 30) -> None:
        self.interval = interval  # the typical spacing of what was sent
        self._offset = 0
        self._last: int | None = None
        self._rebase = False

    def switch(self) -> None:
        """The next timestamp is the first of another stream."""
        self._rebase = self._last is not None

    def stamp(self, timestamp: int) -> int:
        if self._rebase:
            self._rebase = False
            assert self._last is not None
            self._offset = self._last + self.interval - timestamp
        out = timestamp + self._offset
        last = self._last
        if last is not None:
            if out <= last:  # never backwards, whatever a stream does
                self._offset += last + 1 - out
                out = last + 1
            elif out - last > 1:  # a squashed GOP's one-tick steps are not a frame rate
                self.interval = min(out - last, VIDEO_CLOCK_RATE)
        self._last = out
        return out


def with_parameter_sets(unit: AccessUnit, source: AccessUnit | None) -> AccessUnit:
    """`unit` with SPS and PPS in front when it lacks them, taken from `source` (the
    stream's newest keyframe, which the hub's normalizer gave them)."""
    types = {nal_type(n) for n in unit.nals}
    if source is None or (NAL_SPS in types and NAL_PPS in types):
        return unit
    sets = tuple(n for n in source.nals if nal_type(n) in (NAL_SPS, NAL_PPS))
    return AccessUnit(sets + unit.nals, unit.pts, unit.keyframe, unit.arrival, unit.capture)


class ViewerFeed:
    """What one viewer's video track reads: main or sub, as the viewer's view, pin and
    path allow. A camera without a sub stream: always main, nothing switches."""

    def __init__(self, hub: CameraHub, *, view: View = "full", pin: Pin = "auto") -> None:
        self._hubs: dict[StreamName, CameraHub] = {"main": hub}
        if hub.substream is not None:
            self._hubs["sub"] = hub.substream
        self.view: View = view
        self.pin: Pin = pin
        self.main_allowed = True
        self.reason: str = "pin" if pin != "auto" else "view"  # of the current choice
        self._want_reason = self.reason
        self.on_switch: Callable[[StreamName, StreamName, str], None] = lambda *_: None
        self._retimer = Retimer()
        self._fresh = False  # the next picture is the first of a switched-to stream
        self._closed = False
        self._busy = False  # inside _reconcile: hub listeners fire on our own subscribe()
        self._pending: tuple[StreamName, Subscription] | None = None
        self._waiter: asyncio.Task[None] | None = None
        self.current: StreamName = self._target()
        if self.current != self.wanted():
            self.reason = "unavailable"
        self._sub = self._hubs[self.current].subscribe()
        for each in self._hubs.values():
            each.add_listener(self._on_hub_change)
        self._reconcile(self._want_reason)  # the wanted stream, if down: watched till back

    @property
    def main_hub(self) -> CameraHub:
        return self._hubs["main"]

    @property
    def hub(self) -> CameraHub:
        """The hub of the stream the viewer gets now."""
        return self._hubs[self.current]

    def streams(self) -> list[StreamName]:
        sub = self._hubs.get("sub")
        return ["main"] if sub is None or sub.absent else ["main", "sub"]

    # --- what the viewer wants ------------------------------------------------------

    def set_view(self, view: View) -> None:
        if view != self.view:
            self.view = view
            self._want("view")

    def set_pin(self, pin: Pin) -> None:
        if pin != self.pin:
            self.pin = pin
            self._want("pin")

    def allow_main(self, allowed: bool, reason: str) -> None:
        """The congestion policy's verdict: False = the path can't carry the main stream."""
        if allowed != self.main_allowed:
            self.main_allowed = allowed
            self._want(reason)

    def wanted(self) -> StreamName:
        if "sub" not in self.streams():
            return "main"
        if self.pin != "auto":
            return self.pin
        return "main" if self.view == "full" and self.main_allowed else "sub"

    def _want(self, reason: str) -> None:
        self._want_reason = reason
        self._reconcile(reason)

    # --- frames ---------------------------------------------------------------------

    async def get(self) -> OutputFrame:
        """The next picture to send, like Subscription.get(); SubscriptionClosed at the end."""
        while True:
            if self._closed:
                raise SubscriptionClosed
            sub = self._sub
            try:
                frame = await sub.get()
            except SubscriptionClosed:
                if self._closed or sub is self._sub:
                    raise  # the feed or its camera went away, not a switch
                continue
            if sub is not self._sub:
                continue  # a picture of the old stream that raced the switch
            return self._output(frame)

    def _output(self, frame: OutputFrame) -> OutputFrame:
        unit = frame.unit
        if self._fresh:
            self._fresh = False
            unit = with_parameter_sets(unit, self.hub.last_keyframe)
        timestamp = self._retimer.stamp(frame.timestamp)
        if timestamp == frame.timestamp and unit is frame.unit:
            return frame  # nothing switched yet: no copy
        return OutputFrame(unit, timestamp)

    def request_keyframe(self) -> None:
        """A viewer's PLI/FIR: to the hub of the stream it gets now."""
        self.hub.request_keyframe()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for each in self._hubs.values():
            each.remove_listener(self._on_hub_change)
        self._drop_pending()
        self._hubs[self.current].unsubscribe(self._sub)

    @property
    def closed(self) -> bool:
        return self._closed

    # --- switching ------------------------------------------------------------------

    def _available(self, name: StreamName) -> bool:
        hub = self._hubs.get(name)
        return hub is not None and not hub.absent and hub.state not in _DOWN

    def _target(self) -> StreamName:
        """The wanted stream, unless it is down while the other one is not."""
        wanted = self.wanted()
        other: StreamName = "sub" if wanted == "main" else "main"
        if self._available(wanted) or not self._available(other):
            return wanted
        return other

    def _on_hub_change(self) -> None:
        if not self._busy and not self._closed:
            self._reconcile(self._want_reason)

    def _reconcile(self, reason: str) -> None:
        if self._closed or self._busy:
            return
        self._busy = True
        try:
            self._steer(reason)
        finally:
            self._busy = False

    def _steer(self, reason: str) -> None:
        wanted, target = self.wanted(), self._target()
        if target != wanted or not self._available(self.current):
            reason = "unavailable"  # away from a stream that is down or turned out missing
        if target == self.current:
            if target == wanted:
                self._drop_pending()
            else:
                # Stay subscribed to the wanted stream that is down: its hub keeps
                # retrying, and the viewer returns to it once it is live.
                self._pend(wanted)
                self.reason = "unavailable"
            return
        hub = self._pend(target)
        if hub.start_frames():
            self._switch(target, reason)
        elif hub.state is CameraState.LIVE:
            self._wait_for_keyframe(hub)
        # else: connecting; its listener call brings us back when it is live (or down)

    def _pend(self, name: StreamName) -> CameraHub:
        hub = self._hubs[name]
        if self._pending is not None and self._pending[0] != name:
            self._drop_pending()
        if self._pending is None:
            self._pending = (name, hub.subscribe())
        return hub

    def _drop_pending(self) -> None:
        if self._waiter is not None:
            self._waiter.cancel()
            self._waiter = None
        pending, self._pending = self._pending, None
        if pending is not None:
            self._hubs[pending[0]].unsubscribe(pending[1])

    def _wait_for_keyframe(self, hub: CameraHub) -> None:
        if self._waiter is not None and not self._waiter.done():
            return

        async def wait() -> None:
            with contextlib.suppress(TimeoutError):
                await hub.keyframe(KEYFRAME_WAIT_S, newer_than=hub.last_keyframe)
            self._waiter = None
            self._reconcile(self._want_reason)

        self._waiter = asyncio.get_running_loop().create_task(wait(), name=f"feed:{hub.name}")

    @staticmethod
    def _slow_path_pacer(hub: CameraHub) -> BurstPacer | None:
        bitrate_kbps = hub.status().bitrate_kbps
        if not bitrate_kbps:
            return None
        kbps = max(bitrate_kbps * SLOW_PATH_PACE, SLOW_PATH_MIN_KBPS)
        return BurstPacer(rate_bps=kbps * 1000, allowance_bytes=SLOW_PATH_ALLOWANCE_BYTES)

    def _switch(self, target: StreamName, reason: str) -> None:
        assert self._pending is not None and self._pending[0] == target
        old, old_sub = self.current, self._sub
        self._sub = self._pending[1]
        self._pending = None
        if self._waiter is not None:
            self._waiter.cancel()
            self._waiter = None
        self.current = target
        self.reason = reason
        if reason == "congestion" and (pacer := self._slow_path_pacer(self._hubs[target])):
            self._sub.pace(pacer)
        self._retimer.switch()
        self._fresh = True
        # Closing the old subscription wakes a get() waiting on it, which moves on.
        self._hubs[old].unsubscribe(old_sub)
        self.main_hub.count_switch(reason)
        log.info(
            "camera %s: a viewer switched %s -> %s (%s)", self.main_hub.name, old, target, reason
        )
        try:
            self.on_switch(old, target, reason)
        except Exception:  # a listener's bug must not break the viewer's video
            log.exception("camera %s: on_switch failed", self.main_hub.name)

"""One viewer's bounded view of a camera's frames.

A slow viewer must never slow the camera or other viewers: when its queue is full it
skips to the next keyframe (a partial GOP is undecodable anyway) and counts the drop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.media.accessunit import AccessUnit
from gateway.pacing import BurstPacer, shared_pacer

# ~2 s of live video at 30 fps: enough to ride out a hiccup, small enough that a stuck
# viewer skips ahead rather than watching the past.
DEFAULT_LIVE_LIMIT = 60
# And by bytes: 60 pictures of a hostile camera could be 60 x the picture cap.
DEFAULT_LIVE_LIMIT_BYTES = 32 * 1024 * 1024


class SubscriptionClosed(Exception):
    """The camera or the viewer went away."""


@dataclass(frozen=True, slots=True)
class OutputFrame:
    unit: AccessUnit
    timestamp: int  # 90 kHz, what the viewer's RTP timestamp is derived from


class Subscription:
    """Frames for one viewer. Inactive until the viewer first asks for a frame.

    Queueing starts at the first `get()` (not when the peer is created) so frames
    that arrive while ICE/DTLS connect don't pile up and go out in one burst.
    """

    def __init__(
        self,
        gop_snapshot: Callable[[], Sequence[AccessUnit]],
        on_first_get: Callable[[Subscription], None] = lambda _s: None,
        live_limit: int = DEFAULT_LIVE_LIMIT,
        live_limit_bytes: int = DEFAULT_LIVE_LIMIT_BYTES,
        pacer: BurstPacer | None = None,
    ) -> None:
        self._gop_snapshot = gop_snapshot
        self._on_first_get = on_first_get
        self._live_limit = live_limit
        self._live_limit_bytes = live_limit_bytes
        self._live_bytes = 0
        self._pacer = pacer or shared_pacer()  # the cached GOP is paced, live frames not
        self._pace_live = False  # ... unless pace() said so (until caught up)
        self._burst: deque[OutputFrame] = deque()
        self._live: deque[OutputFrame] = deque()
        self._wakeup = asyncio.Event()
        self._active = False
        self._closed = False
        self._waiting_for_keyframe = True
        self.dropped = 0

    @property
    def active(self) -> bool:
        return self._active

    @property
    def closed(self) -> bool:
        return self._closed

    def push(self, unit: AccessUnit) -> None:
        """Called by the hub for every live frame (synchronous, O(1))."""
        if not self._active or self._closed:
            return
        if self._waiting_for_keyframe:
            if not unit.keyframe:
                return
            self._waiting_for_keyframe = False
        elif (
            len(self._live) >= self._live_limit
            or self._live_bytes + unit.size > self._live_limit_bytes
        ):
            self._live_bytes = 0
            if not unit.keyframe:
                # Too far behind: drop everything queued and wait for the next keyframe.
                self.dropped += len(self._live) + 1
                self._live.clear()
                self._waiting_for_keyframe = True
                return
            self.dropped += len(self._live)
            self._live.clear()
        self._live.append(OutputFrame(unit, unit.pts))
        self._live_bytes += unit.size
        self._wakeup.set()

    def pace(self, pacer: BurstPacer) -> None:
        """Send the cached GOP through `pacer`, and the live frames that queue up behind
        it until they are caught up with: for a viewer on a path known to be slow, where
        they would otherwise leave at line rate and mostly be dropped."""
        self._pacer = pacer
        self._pace_live = True

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    async def get(self) -> OutputFrame:
        if not self._active:
            self._activate()
        while True:
            if self._closed:
                raise SubscriptionClosed
            queue = self._burst or self._live
            if queue:
                frame = queue.popleft()
                if queue is self._live:
                    self._live_bytes -= frame.unit.size
                if queue is self._burst or self._pace_live:
                    await self._pacer.take(frame.unit.size)
                    if not self._burst and not self._live:
                        self._pace_live = False  # caught up: live frames as they come
                    if self._closed:
                        raise SubscriptionClosed
                if self._burst or self._live:
                    # More queued (a join burst, a slow viewer): yield to the event loop
                    # between frames, or draining it in one go starves HTTP and every
                    # other viewer. Live, the next get() waits for a frame and yields then.
                    await asyncio.sleep(0)
                return frame
            self._wakeup.clear()
            await self._wakeup.wait()

    def _activate(self) -> None:
        self._active = True
        cached = list(self._gop_snapshot())
        if cached:
            self._waiting_for_keyframe = False
            self._burst.extend(squash_timestamps(cached))
        self._on_first_get(self)


def squash_timestamps(units: Sequence[AccessUnit]) -> list[OutputFrame]:
    """Cached GOP frames for a new viewer, timestamped one tick apart ending at the newest.

    With their original timestamps the browser would play the cached GOP in real time
    (adding seconds of delay) or drop it as late. One-tick spacing makes it decode them
    all at once and show the newest, and the live frames that follow continue naturally.
    """
    newest = units[-1].pts
    count = len(units)
    return [OutputFrame(u, newest - (count - 1 - i)) for i, u in enumerate(units)]

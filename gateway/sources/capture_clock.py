"""Capture times for a source whose own timestamps only count from its start (the Pi
camera's frames: sensor time since the first frame; its microphone: samples read).

A unit that arrived at monotonic time `arrived` with position `p` seconds since the
stream's start puts the start at or before `arrived - p`; the earliest such bound seen
(the unit that came through fastest) is the start. A later bound by more than
RESYNC_S means time was lost (samples dropped by an overrun, a restart): re-anchor.
The result is Unix seconds, the clock of AccessUnit.capture and AudioPacket.capture,
so the pictures and the sound of one Pi share it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

RESYNC_S = 0.25


class CaptureClock:
    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._monotonic = monotonic
        self._wall = wall
        self._start: float | None = None  # monotonic time of position 0
        self.resyncs = 0

    def observe(self, position_s: float, arrived: float) -> None:
        """The unit ending at `position_s` (seconds since the start) arrived now."""
        bound = arrived - position_s
        if self._start is None or bound < self._start:
            self._start = bound
        elif bound - self._start > RESYNC_S:
            self._start = bound
            self.resyncs += 1

    def wall(self, position_s: float) -> float:
        """Unix time of `position_s` (after at least one observe())."""
        start = self._start if self._start is not None else self._monotonic() - position_s
        return start + position_s + (self._wall() - self._monotonic())

    def capture(self, position_s: float, arrived: float) -> float:
        """observe() then wall(): for units whose position is their capture (frames)."""
        self.observe(position_s, arrived)
        return self.wall(position_s)

"""CaptureClock: a stream's own start-relative timestamps as Unix capture times."""

from __future__ import annotations

import pytest

from gateway.sources.capture_clock import RESYNC_S, CaptureClock


class Clocks:
    def __init__(self) -> None:
        self.mono = 100.0

    def wall(self) -> float:
        return self.mono + 1_700_000_000.0  # the wall clock runs 1.7e9 s ahead


def test_the_fastest_arrival_sets_the_start_and_late_ones_do_not_move_it() -> None:
    clocks = Clocks()
    clock = CaptureClock(monotonic=lambda: clocks.mono, wall=clocks.wall)
    assert clock.capture(0.0, 100.05) == pytest.approx(1_700_000_100.05)  # 50 ms in transit
    assert clock.capture(1.0, 101.02) == pytest.approx(1_700_000_101.02)  # faster: 20 ms
    assert clock.capture(2.0, 102.2) == pytest.approx(1_700_000_102.02)  # slow: start stays
    assert clock.resyncs == 0


def test_lost_time_re_anchors() -> None:
    clocks = Clocks()
    clock = CaptureClock(monotonic=lambda: clocks.mono, wall=clocks.wall)
    clock.observe(1.0, 101.0)
    clock.observe(2.0, 102.0 + RESYNC_S + 0.5)  # samples were lost: the count fell behind
    assert clock.resyncs == 1
    assert clock.wall(2.0) == pytest.approx(1_700_000_102.0 + RESYNC_S + 0.5)

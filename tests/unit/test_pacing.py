"""gateway.pacing: the join burst's token bucket, on a fake clock."""

from __future__ import annotations

import pytest

from gateway.pacing import BurstPacer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_allowance_goes_at_once_then_the_rate_holds() -> None:
    clock = Clock()
    pacer = BurstPacer(rate_bps=8_000_000, allowance_bytes=10_000, clock=clock)  # 1 MB/s
    assert pacer.delay(10_000) == 0.0
    assert pacer.delay(100_000) == pytest.approx(0.1)
    assert pacer.delay(100_000) == pytest.approx(0.2)  # queued behind the first
    clock.now += 0.2  # both sent
    assert pacer.delay(50_000) == pytest.approx(0.05)


def test_idle_time_refills_only_up_to_the_allowance() -> None:
    clock = Clock()
    pacer = BurstPacer(rate_bps=8_000_000, allowance_bytes=10_000, clock=clock)
    clock.now += 60.0
    assert pacer.delay(10_000) == 0.0
    assert pacer.delay(1_000_000) == pytest.approx(1.0)


def test_concurrent_joins_share_the_rate() -> None:
    clock = Clock()
    pacer = BurstPacer(rate_bps=8_000_000, allowance_bytes=0, clock=clock)
    waits = [pacer.delay(100_000) for _ in range(8)]  # eight viewers, one frame each
    assert waits == pytest.approx([0.1 * (i + 1) for i in range(8)])


def test_rejects_a_rate_of_zero() -> None:
    with pytest.raises(ValueError):
        BurstPacer(rate_bps=0)

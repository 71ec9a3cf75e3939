import asyncio

from gateway.media.accessunit import AccessUnit
from gateway.pacing import BurstPacer
from gateway.subscription import Subscription, SubscriptionClosed, squash_timestamps


def unit(pts: int, keyframe: bool = False) -> AccessUnit:
    return AccessUnit((b"\x65" if keyframe else b"\x41",), pts, keyframe, 0.0)


def gop(start: int, count: int) -> list[AccessUnit]:
    return [unit(start + i * 3000, keyframe=i == 0) for i in range(count)]


async def test_new_viewer_gets_cached_gop_squashed_then_live() -> None:
    cached = gop(0, 5)
    sub = Subscription(lambda: cached)
    first = await sub.get()
    assert first.unit is cached[0] and first.unit.keyframe
    rest = [await sub.get() for _ in range(4)]
    stamps = [first.timestamp] + [f.timestamp for f in rest]
    assert stamps == [12000 - 4, 12000 - 3, 12000 - 2, 12000 - 1, 12000]
    sub.push(unit(15000))
    assert (await sub.get()).timestamp == 15000


async def test_without_cache_waits_for_a_keyframe() -> None:
    started: list[Subscription] = []
    sub = Subscription(lambda: [], on_first_get=started.append)
    getter = asyncio.ensure_future(sub.get())
    await asyncio.sleep(0)
    assert started == [sub]
    sub.push(unit(3000))  # not decodable on its own: skipped
    sub.push(unit(6000, keyframe=True))
    assert (await asyncio.wait_for(getter, 5)).unit.pts == 6000


def test_frames_before_first_get_are_not_queued() -> None:
    sub = Subscription(lambda: [])
    for f in gop(0, 10):
        sub.push(f)
    assert not sub.active and sub.dropped == 0


async def test_stuck_viewer_skips_to_next_keyframe_and_counts() -> None:
    sub = Subscription(lambda: [], live_limit=4)
    getter = asyncio.ensure_future(sub.get())
    await asyncio.sleep(0)
    sub.push(unit(0, keyframe=True))
    await getter
    for f in gop(3000, 10)[1:]:  # 9 P-frames, viewer not reading
        sub.push(f)
    assert sub.dropped > 0
    sub.push(unit(99000))  # still waiting for a keyframe
    sub.push(unit(102000, keyframe=True))
    frame = await sub.get()
    assert frame.unit.keyframe and frame.unit.pts == 102000


async def test_close_wakes_a_waiting_viewer() -> None:
    sub = Subscription(lambda: [])
    getter = asyncio.ensure_future(sub.get())
    await asyncio.sleep(0)
    sub.close()
    try:
        await asyncio.wait_for(getter, 5)
    except SubscriptionClosed:
        pass
    else:
        raise AssertionError("expected SubscriptionClosed")


def test_squash_keeps_order_and_ends_at_newest() -> None:
    frames = squash_timestamps(gop(1000, 3))
    assert [f.timestamp for f in frames] == [7000 - 2, 7000 - 1, 7000]


class RecordingPacer(BurstPacer):
    """A pacer that lets everything through at once and says what it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.taken: list[int] = []

    async def take(self, nbytes: int) -> None:
        self.taken.append(nbytes)


async def test_a_slow_paths_subscription_paces_what_queued_behind_the_gop_too() -> None:
    for slow in (False, True):
        pacer = RecordingPacer()
        sub = Subscription(lambda: gop(0, 3), pacer=pacer)
        if slow:
            sub.pace(pacer)
        await sub.get()  # the keyframe; two more cached frames to go
        sub.push(unit(9000))  # live frames queue up behind them
        sub.push(unit(12000))
        for _ in range(4):
            await sub.get()
        sub.push(unit(15000))  # caught up: as it comes
        await sub.get()
        assert len(pacer.taken) == (5 if slow else 3)

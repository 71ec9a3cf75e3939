"""CameraHub lifecycle with the real demo camera (a real H.264 encoder in-process)."""

from __future__ import annotations

import asyncio

from gateway.config import DemoSettings
from gateway.hub import CameraHub, CameraState
from gateway.sources.demo import DemoSource
from tests.rig.wait import wait_until

SMALL = DemoSettings(width=320, height=180, fps=30, bitrate_kbps=300, gop_seconds=1.0)


def demo_hub(**kwargs: object) -> CameraHub:
    return CameraHub("demo", lambda: DemoSource(SMALL), **kwargs)  # type: ignore[arg-type]


async def test_on_demand_camera_starts_with_first_viewer_and_stops_after_linger() -> None:
    hub = demo_hub(linger_s=0.2)
    await hub.boot()
    assert hub.state is CameraState.IDLE and not hub.running
    sub = hub.subscribe()
    first = await asyncio.wait_for(sub.get(), 20)
    assert first.unit.keyframe  # a new viewer always starts on a keyframe
    assert hub.state is CameraState.LIVE and hub.viewers == 1
    hub.unsubscribe(sub)
    await wait_until(lambda: not hub.running and hub.state is CameraState.IDLE)
    assert hub.viewers == 0
    await hub.close()


async def test_preloaded_camera_stays_connected_without_viewers() -> None:
    hub = demo_hub(preload=True, linger_s=0.0)
    await hub.boot()
    await hub.wait_live(20)
    sub = hub.subscribe()
    await asyncio.wait_for(sub.get(), 20)
    hub.unsubscribe(sub)
    frames = hub.frames_received
    await wait_until(lambda: hub.frames_received > frames + 10)
    assert hub.running and hub.state is CameraState.LIVE
    await hub.close()


async def test_new_viewer_gets_the_cached_gop_then_live_frames() -> None:
    hub = demo_hub(preload=True)
    await hub.boot()
    await hub.wait_live(20)
    await wait_until(lambda: hub.status().gop_frames >= 10)
    keyframes = hub.keyframes_received
    sub = hub.subscribe()
    frames = [await asyncio.wait_for(sub.get(), 20) for _ in range(12)]
    assert frames[0].unit.keyframe
    # All of the burst was served before the camera's next keyframe: no waiting for an IDR.
    assert hub.keyframes_received == keyframes
    stamps = [f.timestamp for f in frames]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    await hub.close()


async def test_a_viewer_that_never_reads_does_not_slow_the_others() -> None:
    hub = demo_hub(preload=True)
    await hub.boot()
    await hub.wait_live(20)
    stuck = hub.subscribe()
    await asyncio.wait_for(stuck.get(), 20)  # active, then never reads again
    reader = hub.subscribe()
    received = 0
    async with asyncio.timeout(30):
        while stuck.dropped == 0 or received < 150:
            await reader.get()
            received += 1
    assert reader.dropped == 0
    assert hub.status().dropped_frames == stuck.dropped > 0
    await hub.close()


async def test_keyframe_requests_are_rate_limited() -> None:
    requests: list[float] = []

    class CountingDemo(DemoSource):
        def request_keyframe(self) -> bool:
            requests.append(asyncio.get_running_loop().time())
            return super().request_keyframe()

    hub = CameraHub("demo", lambda: CountingDemo(SMALL), preload=True)
    await hub.boot()
    await hub.wait_live(20)
    for _ in range(50):
        hub.request_keyframe()
    assert len(requests) == 1
    await hub.close()


async def test_hold_wakes_the_camera_for_a_keyframe_without_being_a_viewer() -> None:
    hub = demo_hub(linger_s=0.2)
    changes: list[tuple[str, int]] = []
    hub.add_listener(lambda: changes.append((hub.state.value, hub.viewers)))
    with hub.hold():
        unit = await hub.keyframe(20)
        assert unit.keyframe and hub.running and hub.viewers == 0
        assert unit is await hub.keyframe(20)  # the cached IDR while it is the latest
    await wait_until(lambda: not hub.running and hub.state is CameraState.IDLE)
    assert changes[0] == ("connecting", 0) and ("live", 0) in changes
    assert changes[-1] == ("idle", 0)
    await hub.close()


class _SwallowsOneCancel(DemoSource):
    """The demo camera, except that its first cancel is lost, as Python 3.11's
    asyncio.wait_for loses one when the awaited call finishes at the same moment."""

    swallowed = 0

    async def run(self, emit):  # type: ignore[no-untyped-def]
        try:
            await super().run(emit)
        except asyncio.CancelledError:
            if _SwallowsOneCancel.swallowed:
                raise
            _SwallowsOneCancel.swallowed += 1
            await asyncio.sleep(0.05)  # carries on, then ends as if the stream broke


async def test_stop_ends_even_when_a_cancel_is_swallowed() -> None:
    hub = CameraHub("demo", lambda: _SwallowsOneCancel(SMALL), preload=True)
    await hub.boot()
    await hub.wait_live(20)
    stopping = asyncio.ensure_future(hub.stop())
    done, _ = await asyncio.wait([stopping], timeout=20)
    if not done:  # it used to hang for ever: the retry loop went on
        stopping.cancel()
    assert done, "stop() did not return"
    assert _SwallowsOneCancel.swallowed == 1
    assert not hub.running and hub.state is CameraState.IDLE

"""PtzController rules against an in-test backend and a hand-driven clock (no sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from gateway.ptz.backend import Preset, PtzCapabilities, PtzError
from gateway.ptz.commands import (
    Absolute,
    GotoPreset,
    Home,
    ListPresets,
    Move,
    Refresh,
    RemovePreset,
    SetPreset,
    Stop,
)
from gateway.ptz.controller import CAMERA_TIMEOUT_MARGIN_S, ErrorKind, Outcome, PtzController

TIMEOUT = 10.0  # generous: these wait on events, never on time passing
FULL = PtzCapabilities(
    pan_tilt=True, zoom=True, presets=True, home=True, absolute=True, relative=True, max_presets=3
)


class FakeClock:
    """time() and call_at() like an event loop, but time moves only in advance()."""

    class Handle:
        def __init__(self, when: float, callback: Callable[[], object]) -> None:
            self.when, self.callback, self.cancelled = when, callback, False

        def cancel(self) -> None:
            self.cancelled = True

    def __init__(self) -> None:
        self.now = 1000.0
        self.handles: list[FakeClock.Handle] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object]) -> FakeClock.Handle:
        handle = FakeClock.Handle(when, callback)
        self.handles.append(handle)
        return handle

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while True:
            due = [h for h in self.handles if not h.cancelled and h.when <= target]
            if not due:
                break
            handle = min(due, key=lambda h: h.when)
            self.handles.remove(handle)
            self.now = max(self.now, handle.when)
            handle.callback()
        self.now = target


class FakeBackend:
    """Records calls; `hold()` makes calls wait until `release_calls()`."""

    def __init__(self, capabilities: PtzCapabilities = FULL) -> None:
        self.capabilities = capabilities
        self.calls: list[tuple[Any, ...]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.failures: dict[str, list[BaseException]] = {}
        self.preset_list = [Preset("1", "Porch"), Preset("2", "Gate")]
        self.move_timeouts: list[float | None] = []  # the Timeout asked of each move
        self.honours_timeout = False  # True: like an ONVIF camera that takes Timeout
        self._gate = asyncio.Event()
        self._gate.set()
        self._changed = asyncio.Condition()

    def hold(self) -> None:
        self._gate.clear()

    def release_calls(self) -> None:
        self._gate.set()

    def fail(self, name: str, error: BaseException) -> None:
        self.failures.setdefault(name, []).append(error)

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]

    async def wait_calls(self, n: int) -> None:
        async with asyncio.timeout(TIMEOUT), self._changed:
            await self._changed.wait_for(lambda: len(self.calls) >= n)

    async def _call(self, *call: Any) -> None:
        self.calls.append(call)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        async with self._changed:
            self._changed.notify_all()
        try:
            await self._gate.wait()
            if self.failures.get(call[0]):
                raise self.failures[call[0]].pop(0)
        finally:
            self.in_flight -= 1

    async def continuous_move(
        self, pan: float, tilt: float, zoom: float, timeout: float | None = None
    ) -> float | None:
        self.move_timeouts.append(timeout)
        await self._call("move", pan, tilt, zoom)
        return timeout if self.honours_timeout else None

    async def stop(self, pan_tilt: bool = True, zoom: bool = True) -> None:
        await self._call("stop", pan_tilt, zoom)

    async def relative_move(self, pan: float, tilt: float, zoom: float, speed: float | None):
        await self._call("relative", pan, tilt, zoom, speed)

    async def absolute_move(self, pan: float, tilt: float, zoom: float, speed: float | None):
        await self._call("absolute", pan, tilt, zoom, speed)

    async def goto_preset(self, token: str) -> None:
        await self._call("goto_preset", token)

    async def set_preset(self, name: str) -> str:
        await self._call("set_preset", name)
        token = str(len(self.preset_list) + 1)
        self.preset_list.append(Preset(token, name))
        return token

    async def remove_preset(self, token: str) -> None:
        await self._call("remove_preset", token)
        self.preset_list = [p for p in self.preset_list if p.token != token]

    async def home(self, speed: float | None) -> None:
        await self._call("home", speed)

    async def presets(self) -> list[Preset]:
        await self._call("presets")
        return list(self.preset_list)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
async def ptz(backend: FakeBackend, clock: FakeClock) -> AsyncIterator[PtzController]:
    controller = PtzController(backend, "cam", deadman_s=1.0, max_move_s=30.0, clock=clock)
    yield controller
    backend.release_calls()
    await controller.close()


def submit(ptz: PtzController, command: Any, owner: str = "viewer", **kw: Any):
    return asyncio.ensure_future(ptz.submit(command, owner, **kw))


async def settled(ptz: PtzController) -> None:
    """Until the worker has nothing queued and nothing in flight."""
    async with asyncio.timeout(TIMEOUT):
        while ptz.pending or (ptz._worker is not None and ptz.backend.in_flight):  # type: ignore[attr-defined]
            await asyncio.sleep(0)


# --- basics -----------------------------------------------------------------------------


async def test_move_reaches_the_backend_and_replies_ok(
    ptz: PtzController, backend: FakeBackend
) -> None:
    reply = await ptz.execute(Move(pan=0.5, tilt=-0.25), "viewer", id=4)
    assert reply == {"v": 1, "id": 4, "ok": True}
    assert backend.calls == [("move", 0.5, -0.25, 0.0)]
    assert ptz.moving
    assert [t.command for t in ptz.timings] == ["move"]
    timing = ptz.timings[0]
    assert timing.received_at <= timing.started_at <= timing.finished_at and timing.ok


async def test_a_zero_move_is_sent_as_stop(ptz: PtzController, backend: FakeBackend) -> None:
    assert (await ptz.submit(Move(), "viewer")).ok
    assert backend.calls == [("stop", True, True)]


async def test_backend_errors_become_readable_replies(
    ptz: PtzController, backend: FakeBackend
) -> None:
    backend.fail("home", PtzError("the camera refused GotoHomePosition: busy"))
    backend.fail("absolute", RuntimeError("bug"))
    reply = await ptz.execute(Home(), "viewer", id="h")
    assert reply == {
        "v": 1,
        "id": "h",
        "ok": False,
        "error": "the camera refused GotoHomePosition: busy",
    }
    outcome = await ptz.submit(Absolute(0, 0, 0), "viewer")
    assert outcome.kind is ErrorKind.CAMERA and "gateway log" in (outcome.error or "")
    assert (await ptz.submit(Home(), "viewer")).ok  # the worker lives on


async def test_a_hung_backend_call_times_out(backend: FakeBackend, clock: FakeClock) -> None:
    ptz = PtzController(backend, "cam", command_timeout_s=0.05, clock=clock)
    backend.hold()
    outcome = await ptz.submit(Home(), "viewer")
    assert outcome.kind is ErrorKind.TIMEOUT and "did not answer within 0.05 s" in outcome.error
    backend.release_calls()
    assert (await ptz.submit(Home(), "viewer")).ok
    await ptz.close()


async def test_capabilities_refuse_before_the_wire(backend: FakeBackend) -> None:
    backend.capabilities = PtzCapabilities(pan_tilt=True)
    ptz = PtzController(backend, "cam")
    for command, message in [
        (Move(zoom=0.5), "cannot zoom"),
        (GotoPreset("x"), "no presets"),
        (ListPresets(), "no presets"),
        (Home(), "no home"),
        (Absolute(0, 0, 0), "no absolute"),
    ]:
        outcome = await ptz.submit(command, "viewer")
        assert outcome.kind is ErrorKind.REJECTED and message in (outcome.error or "")
    assert backend.calls == []
    await ptz.close()


async def test_unknown_capabilities_leave_the_decision_to_the_backend(
    backend: FakeBackend,
) -> None:
    backend.capabilities = PtzCapabilities()  # not loaded yet
    ptz = PtzController(backend, "cam")
    assert (await ptz.submit(Home(), "viewer")).ok
    await ptz.close()


# --- serialization and coalescing -------------------------------------------------------


async def test_commands_never_overlap_on_the_wire(ptz: PtzController, backend: FakeBackend) -> None:
    backend.hold()
    tasks = [
        submit(ptz, Home()),
        submit(ptz, Move(pan=1)),
        submit(ptz, Absolute(0, 0, 0)),
        submit(ptz, Stop()),
    ]
    await backend.wait_calls(1)
    backend.release_calls()
    outcomes = await asyncio.gather(*tasks)
    assert all(o.ok for o in outcomes)
    # the Stop superseded the pending move
    assert backend.names() == ["home", "absolute", "stop"]
    assert outcomes[1].extra == {"superseded": True}
    assert backend.max_in_flight == 1


async def test_a_burst_of_moves_collapses_to_the_newest(
    ptz: PtzController, backend: FakeBackend
) -> None:
    backend.hold()
    first = submit(ptz, Move(pan=0.01))
    await backend.wait_calls(1)
    burst = [submit(ptz, Move(pan=i / 100)) for i in range(2, 51)]
    await asyncio.sleep(0)
    backend.release_calls()
    outcomes = await asyncio.gather(first, *burst)
    assert backend.calls == [("move", 0.01, 0.0, 0.0), ("move", 0.5, 0.0, 0.0)]
    assert all(o.ok for o in outcomes)
    assert sum(o.extra.get("superseded", False) for o in outcomes) == 48


async def test_a_stop_supersedes_pending_moves_and_is_never_dropped(
    ptz: PtzController, backend: FakeBackend
) -> None:
    backend.hold()
    tasks = [submit(ptz, Move(pan=1))]
    await backend.wait_calls(1)
    tasks += [submit(ptz, Move(pan=0.5)), submit(ptz, Stop()), submit(ptz, Move(tilt=0.3))]
    tasks += [submit(ptz, Move(tilt=0.4))]
    await asyncio.sleep(0)
    backend.release_calls()
    outcomes = await asyncio.gather(*tasks)
    assert backend.names() == ["move", "stop", "move"]
    assert backend.calls[2] == ("move", 0.0, 0.4, 0.0)
    assert [o.extra.get("superseded", False) for o in outcomes] == [
        False,
        True,
        False,
        True,
        False,
    ]


async def test_back_to_back_stops_merge(ptz: PtzController, backend: FakeBackend) -> None:
    backend.hold()
    tasks = [submit(ptz, Home())]
    await backend.wait_calls(1)
    tasks += [submit(ptz, Stop(pan_tilt=True, zoom=False)), submit(ptz, Stop(False, True))]
    await asyncio.sleep(0)
    backend.release_calls()
    assert all(o.ok for o in await asyncio.gather(*tasks))
    assert backend.calls == [("home", None), ("stop", True, True)]


async def test_the_queue_is_bounded_but_motion_is_always_accepted(
    backend: FakeBackend, clock: FakeClock
) -> None:
    ptz = PtzController(backend, "cam", queue_size=2, clock=clock)
    backend.hold()
    tasks = [submit(ptz, Home())]
    await backend.wait_calls(1)
    tasks += [submit(ptz, GotoPreset("1")), submit(ptz, Home())]
    await asyncio.sleep(0)  # let both reach the queue
    busy = await ptz.submit(Absolute(0, 0, 0), "viewer")
    assert busy.kind is ErrorKind.BUSY and busy.error == "busy: too many PTZ commands queued"
    tasks += [submit(ptz, Move(pan=1)), submit(ptz, Stop())]
    await asyncio.sleep(0)
    backend.release_calls()
    assert all(o.ok for o in await asyncio.gather(*tasks))
    assert backend.names() == ["home", "presets", "goto_preset", "home", "stop"]
    await ptz.close()


# --- a move always ends -----------------------------------------------------------------


async def test_deadman_stops_a_held_move_without_refresh(
    ptz: PtzController, backend: FakeBackend, clock: FakeClock
) -> None:
    await ptz.submit(Move(pan=1), "viewer", held=True)
    clock.advance(0.99)
    assert ptz.pending == 0
    clock.advance(0.02)
    await backend.wait_calls(2)
    assert backend.calls[1] == ("stop", True, True)
    await settled(ptz)
    assert not ptz.moving


async def test_refresh_keeps_a_held_move_going(
    ptz: PtzController, backend: FakeBackend, clock: FakeClock
) -> None:
    await ptz.submit(Move(pan=1), "viewer", held=True)
    for _ in range(5):
        clock.advance(0.6)
        assert (await ptz.submit(Refresh(), "viewer")).extra == {"moving": True}
        assert ptz.pending == 0 and ptz.moving
    assert (await ptz.submit(Refresh(), "someone-else")).extra == {"moving": False}
    clock.advance(0.9)
    assert ptz.pending == 0
    clock.advance(0.2)
    await backend.wait_calls(2)
    assert backend.names() == ["move", "stop"]


async def test_every_move_asks_the_camera_to_stop_by_itself_a_margin_after_us(
    ptz: PtzController, backend: FakeBackend, clock: FakeClock
) -> None:
    await ptz.submit(Move(pan=1), "viewer", held=True)  # dead-man 1 s
    await ptz.submit(Move(pan=1, duration=5), "http")
    await ptz.submit(Move(pan=1), "http")  # max_move 30 s
    assert backend.move_timeouts == [
        1.0 + CAMERA_TIMEOUT_MARGIN_S,
        5.0 + CAMERA_TIMEOUT_MARGIN_S,
        30.0 + CAMERA_TIMEOUT_MARGIN_S,
    ]


async def test_a_refreshed_hold_is_sent_again_before_the_camera_stops_by_itself(
    ptz: PtzController, backend: FakeBackend, clock: FakeClock
) -> None:
    backend.honours_timeout = True
    await ptz.submit(Move(pan=1), "viewer", held=True)
    camera_stops, sent = clock.now + 1.0 + CAMERA_TIMEOUT_MARGIN_S, 1
    for _ in range(20):  # 6 s of refreshes: well past the first move's own stop
        clock.advance(0.3)
        await ptz.submit(Refresh(), "viewer")
        await settled(ptz)
        assert clock.now < camera_stops  # the camera never got to stop by itself
        if len(backend.calls) > sent:  # sent again (now, on the fake clock)
            camera_stops, sent = clock.now + 1.0 + CAMERA_TIMEOUT_MARGIN_S, len(backend.calls)
    assert set(backend.names()) == {"move"} and len(backend.calls) >= 2
    assert all(call == ("move", 1, 0, 0) for call in backend.calls)
    # The viewer stops refreshing: the dead-man stops it (a renewal may still go out
    # while the last refresh counts), and nothing is sent after the Stop.
    for _ in range(11):
        clock.advance(0.1)
        await settled(ptz)
    assert backend.names()[sent:] in (["stop"], ["move", "stop"])
    clock.advance(10)
    await settled(ptz)
    assert backend.names()[-1] == "stop" and not ptz.moving


async def test_a_timed_move_within_the_cameras_timeout_is_not_sent_again(
    ptz: PtzController, backend: FakeBackend, clock: FakeClock
) -> None:
    backend.honours_timeout = True
    await ptz.submit(Move(tilt=1, duration=5), "http")
    clock.advance(5.1)
    await backend.wait_calls(2)
    await settled(ptz)
    assert backend.names() == ["move", "stop"]


async def test_a_new_move_refreshes_too(
    ptz: PtzController, backend: FakeBackend, clock: FakeClock
) -> None:
    await ptz.submit(Move(pan=1), "viewer", held=True)
    clock.advance(0.8)
    await ptz.submit(Move(pan=0.5), "viewer", held=True)
    clock.advance(0.8)
    assert ptz.pending == 0
    clock.advance(0.3)
    await backend.wait_calls(3)
    assert backend.names() == ["move", "move", "stop"]


async def test_duration_ends_a_move(
    ptz: PtzController, backend: FakeBackend, clock: FakeClock
) -> None:
    await ptz.submit(Move(tilt=1, duration=2.5), "http")
    clock.advance(2.4)
    assert ptz.pending == 0
    clock.advance(0.2)
    await backend.wait_calls(2)
    assert backend.names() == ["move", "stop"]


async def test_held_duration_is_the_earlier_of_both(
    ptz: PtzController, backend: FakeBackend, clock: FakeClock
) -> None:
    await ptz.submit(Move(tilt=1, duration=0.5), "viewer", held=True)
    clock.advance(0.51)
    await backend.wait_calls(2)
    assert backend.names() == ["move", "stop"]


async def test_max_move_time_ends_an_unheld_move(
    ptz: PtzController, backend: FakeBackend, clock: FakeClock
) -> None:
    await ptz.submit(Move(zoom=1), "mqtt")
    clock.advance(29.9)
    assert ptz.pending == 0
    clock.advance(0.2)
    await backend.wait_calls(2)
    assert backend.names() == ["move", "stop"]


async def test_a_duration_over_max_move_time_is_capped(
    backend: FakeBackend, clock: FakeClock
) -> None:
    ptz = PtzController(backend, "cam", max_move_s=5, clock=clock)
    await ptz.submit(Move(zoom=1, duration=60), "http")
    clock.advance(5.01)
    await backend.wait_calls(2)
    await ptz.close()


async def test_release_stops_the_owners_move_only(
    ptz: PtzController, backend: FakeBackend, clock: FakeClock
) -> None:
    await ptz.submit(Move(pan=1), "a", held=True)
    ptz.release("b")
    assert ptz.pending == 0
    ptz.release("a")
    await backend.wait_calls(2)
    assert backend.names() == ["move", "stop"]


async def test_release_drops_the_owners_pending_move(
    ptz: PtzController, backend: FakeBackend
) -> None:
    backend.hold()
    first = submit(ptz, Home(), "a")
    await backend.wait_calls(1)
    pending = submit(ptz, Move(pan=1), "a", held=True)
    await asyncio.sleep(0)
    ptz.release("a")
    outcome = await pending
    assert outcome.kind is ErrorKind.CLOSED
    backend.release_calls()
    await first
    await settled(ptz)
    assert backend.names() == ["home"]


async def test_another_viewers_move_takes_over(
    ptz: PtzController, backend: FakeBackend, clock: FakeClock
) -> None:
    await ptz.submit(Move(pan=1), "a", held=True)
    await ptz.submit(Move(pan=-1), "b", held=True)
    ptz.release("a")  # a's move is no longer the camera's
    assert ptz.pending == 0
    clock.advance(0.5)
    await ptz.submit(Refresh(), "b")
    clock.advance(0.9)
    assert ptz.pending == 0
    clock.advance(0.2)
    await backend.wait_calls(3)
    assert backend.names() == ["move", "move", "stop"]


async def test_an_automatic_stop_jumps_the_queue(
    ptz: PtzController, backend: FakeBackend, clock: FakeClock
) -> None:
    await ptz.submit(Move(pan=1), "viewer", held=True)
    backend.hold()
    tasks = [submit(ptz, Home(), "x")]
    await backend.wait_calls(2)
    tasks += [submit(ptz, Absolute(0, 0, 0), "x"), submit(ptz, SetPreset("new"), "x")]
    await asyncio.sleep(0)
    clock.advance(1.1)  # dead-man while home is on the wire
    backend.release_calls()
    await asyncio.gather(*tasks)
    # home replaced the continuous move: nothing left to stop
    assert backend.names() == ["move", "home", "absolute", "presets", "set_preset"]


async def test_a_failed_automatic_stop_is_retried_then_given_up(
    ptz: PtzController, backend: FakeBackend, clock: FakeClock
) -> None:
    await ptz.submit(Move(pan=1), "viewer", held=True)
    for _ in range(3):
        backend.fail("stop", PtzError("camera unreachable"))
    clock.advance(1.01)
    await backend.wait_calls(2)
    await settled(ptz)
    clock.advance(1.01)
    await backend.wait_calls(3)
    await settled(ptz)
    clock.advance(1.01)
    await backend.wait_calls(4)
    await settled(ptz)
    assert not ptz.moving
    clock.advance(5)
    assert ptz.pending == 0
    assert backend.names() == ["move", "stop", "stop", "stop"]


async def test_a_refused_move_keeps_the_previous_motion_state(
    ptz: PtzController, backend: FakeBackend, clock: FakeClock
) -> None:
    backend.fail("move", PtzError("refused"))
    assert not (await ptz.submit(Move(pan=1), "viewer", held=True)).ok
    assert not ptz.moving
    clock.advance(2)
    assert ptz.pending == 0


async def test_close_stops_the_move_and_refuses_more(
    backend: FakeBackend, clock: FakeClock
) -> None:
    ptz = PtzController(backend, "cam", clock=clock)
    await ptz.submit(Move(pan=1), "mqtt")
    await ptz.close()
    assert backend.names() == ["move", "stop"]
    outcome = await ptz.submit(Move(pan=1), "mqtt")
    assert outcome.kind is ErrorKind.CLOSED
    assert ptz._worker is not None and ptz._worker.done()


async def test_close_without_motion_sends_nothing(backend: FakeBackend) -> None:
    ptz = PtzController(backend, "cam")
    await ptz.close()
    await ptz.close()
    assert backend.calls == []


# --- presets ----------------------------------------------------------------------------


async def test_presets_by_token_name_or_name_ignoring_case(
    ptz: PtzController, backend: FakeBackend
) -> None:
    listed = await ptz.submit(ListPresets(), "viewer")
    assert listed.extra == {
        "presets": [{"token": "1", "name": "Porch"}, {"token": "2", "name": "Gate"}]
    }
    for wanted in ("2", "Gate", "gate"):
        assert (await ptz.submit(GotoPreset(wanted), "viewer")).ok
    assert backend.calls[1:] == [("goto_preset", "2")] * 3  # the cached list served
    missing = await ptz.submit(GotoPreset("Garden"), "viewer")
    assert (
        missing.kind is ErrorKind.REJECTED and missing.error == "no preset 'Garden' on this camera"
    )


async def test_set_and_remove_preset(ptz: PtzController, backend: FakeBackend) -> None:
    saved = await ptz.submit(SetPreset("Garden"), "viewer")
    assert saved.extra == {"preset": {"token": "3", "name": "Garden"}}
    duplicate = await ptz.submit(SetPreset("Garden"), "viewer")
    assert duplicate.kind is ErrorKind.REJECTED and "exists" in (duplicate.error or "")
    full = await ptz.submit(SetPreset("Fourth"), "viewer")
    assert full.kind is ErrorKind.REJECTED and "at most 3 presets" in (full.error or "")
    assert (await ptz.submit(RemovePreset("garden"), "viewer")).ok
    assert ("remove_preset", "3") in backend.calls
    listed = await ptz.submit(ListPresets(), "viewer")
    assert [p["name"] for p in listed.extra["presets"]] == ["Porch", "Gate"]


def test_outcome_replies() -> None:
    assert Outcome(extra={"moving": True}).reply(1) == {"v": 1, "id": 1, "ok": True, "moving": True}
    failed = Outcome.failed(ErrorKind.BUSY, "busy")
    assert not failed.ok and failed.reply(None)["error"] == "busy"

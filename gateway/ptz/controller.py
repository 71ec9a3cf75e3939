"""PtzController: one per camera; every PTZ command for that camera goes through it.

Rules (docs/ptz.md "Safety"):
- One worker task runs the commands one at a time, so requests for one camera never
  overlap on the wire (a late ContinuousMove overtaking a Stop would keep it moving).
- Coalescing: pending Move/Stop are not queued behind a slow camera. A new Move replaces
  the pending Move (latest wins); a Stop removes pending Moves and is never dropped
  (back-to-back pending Stops merge). Other commands queue in order, bounded ("busy").
- A continuous move always ends: a held Move (viewer data channel) needs a Move or Refresh
  from its owner every `deadman_s`; a Move with `duration` ends then; every Move ends after
  `max_move_s`; `release(owner)` stops the owner's move. Ending means a Stop that jumps
  ahead of queued (non-motion) commands.
- It ends even if camgate dies mid-move (power cut, kill -9): each move asks the camera to
  stop by itself a margin after camgate would (ONVIF's Timeout), and a move that must last
  longer than that (a held one that keeps being refreshed) is sent again before then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from gateway.ptz.backend import Preset, PtzBackend, PtzError
from gateway.ptz.commands import (
    Absolute,
    CommandId,
    GotoPreset,
    Home,
    ListPresets,
    Move,
    PtzCommand,
    Refresh,
    Relative,
    RemovePreset,
    SetPreset,
    Stop,
    error_reply,
    ok_reply,
)

log = logging.getLogger("camgate.ptz")

DEFAULT_DEADMAN_S = 1.0
DEFAULT_MAX_MOVE_S = 30.0
DEFAULT_QUEUE_SIZE = 16
# A backstop only: backends bound each request themselves (ONVIF: `onvif.timeout`) and
# may need a few requests to reconnect first.
DEFAULT_COMMAND_TIMEOUT_S = 20.0
STOP_RETRIES = 3  # an automatic Stop that fails is retried this often, deadman_s apart
CLOSE_TIMEOUT_S = 5.0
TIMINGS_KEPT = 1024
SYSTEM = "camgate"  # the owner of automatic Stops
TIMER_SLACK_S = 0.001  # event loops may fire a timer a hair early
# The camera's own stop comes this long after camgate's would: room for a late Stop or a
# renewal on a slow network, short enough that a dead gateway's camera soon stands still.
CAMERA_TIMEOUT_MARGIN_S = 2.0


class ErrorKind(StrEnum):
    """Why a command failed; the HTTP API maps each to a status."""

    REJECTED = "rejected"  # the camera can't do that (capability, unknown preset): 422
    BUSY = "busy"  # too many commands queued: 409
    CAMERA = "camera"  # the backend failed (PtzError): 502
    TIMEOUT = "timeout"  # no answer in time: 504
    CLOSED = "closed"  # shutting down, or the owner went away: 503
    NO_PTZ = "no_ptz"  # 404


@dataclass(frozen=True, slots=True)
class Outcome:
    error: str | None = None
    kind: ErrorKind | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def reply(self, id: CommandId) -> dict[str, Any]:
        return ok_reply(id, **self.extra) if self.error is None else error_reply(id, self.error)

    @classmethod
    def failed(cls, kind: ErrorKind, message: str) -> Outcome:
        return cls(error=message, kind=kind)


OK = Outcome()


@dataclass(frozen=True, slots=True)
class CommandTiming:
    """One backend call, on time.monotonic(): for the latency benchmark."""

    command: str
    received_at: float  # the message arrived (the caller's hook, e.g. data channel)
    started_at: float  # the backend call began
    finished_at: float
    ok: bool


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """What the controller needs of time; asyncio's event loop is one."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object]) -> Cancellable: ...


@dataclass(eq=False)
class _Job:
    command: PtzCommand | None  # None: the worker's end-of-work marker
    owner: str
    held: bool = False
    received_at: float = 0.0
    future: asyncio.Future[Outcome] | None = None
    renewal: bool = False  # the current move sent again before the camera's own stop

    def resolve(self, outcome: Outcome) -> None:
        if self.future is not None and not self.future.done():
            self.future.set_result(outcome)


@dataclass
class _Motion:
    """The continuous move the camera is believed to be making."""

    owner: str
    held: bool
    started: float
    duration: float | None
    command: Move | None = None
    camera_stops_at: float | None = None  # when the camera stops by itself (clock time)
    stop_failures: int = 0


class PtzController:
    def __init__(
        self,
        backend: PtzBackend,
        camera_name: str,
        *,
        deadman_s: float = DEFAULT_DEADMAN_S,
        max_move_s: float = DEFAULT_MAX_MOVE_S,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        command_timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
        clock: Clock | None = None,
    ) -> None:
        self.backend = backend
        self.camera = camera_name
        self.deadman_s = deadman_s
        self.max_move_s = max_move_s
        self.queue_size = queue_size
        self.command_timeout_s = command_timeout_s
        self.timings: deque[CommandTiming] = deque(maxlen=TIMINGS_KEPT)
        self.on_timing: Callable[[CommandTiming], None] | None = None
        # Called with the camera's presets each time they are read (e.g. for MQTT discovery).
        self.on_presets: Callable[[list[Preset]], None] | None = None
        self._clock = clock
        self._pending: deque[_Job] = deque()
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._motion: _Motion | None = None
        self._heard: dict[str, float] = {}  # held owner -> last Move/Refresh (clock time)
        self._timer: Cancellable | None = None
        self._renew_timer: Cancellable | None = None
        self._presets: list[Preset] | None = None  # cache for name -> token
        self._closed = False

    # --- public -----------------------------------------------------------------------

    @property
    def moving(self) -> bool:
        return self._motion is not None

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def execute(
        self,
        command: PtzCommand,
        owner: str,
        *,
        id: CommandId = None,
        held: bool = False,
        received_at: float | None = None,
    ) -> dict[str, Any]:
        """Run `command` for `owner`; the v1 reply (ok, or a readable error)."""
        outcome = await self.submit(command, owner, held=held, received_at=received_at)
        return outcome.reply(id)

    async def submit(
        self,
        command: PtzCommand,
        owner: str,
        *,
        held: bool = False,
        received_at: float | None = None,
    ) -> Outcome:
        """Like execute(), but the Outcome (with its ErrorKind) rather than a reply.

        `held`: the move lasts while its owner keeps sending Move/Refresh (dead-man).
        `received_at`: time.monotonic() when the message arrived, for CommandTiming."""
        received = time.monotonic() if received_at is None else received_at
        if self._closed:
            return Outcome.failed(ErrorKind.CLOSED, "PTZ control is shutting down")
        refusal = self._refusal(command)
        if refusal is not None:
            return Outcome.failed(ErrorKind.REJECTED, refusal)
        if isinstance(command, Refresh):
            return self._refresh(owner)
        if isinstance(command, Move) and command.still:
            command = Stop()  # zero velocity: some cameras drift or ignore it; Stop is exact
        job = _Job(command, owner, held, received, asyncio.get_running_loop().create_future())
        if isinstance(command, Move | Stop):
            self._enqueue_motion(job)
        elif sum(1 for j in self._pending if not _is_motion(j)) >= self.queue_size:
            return Outcome.failed(ErrorKind.BUSY, "busy: too many PTZ commands queued")
        else:
            self._pending.append(job)
        self._start_worker()
        assert job.future is not None
        # Shielded: a caller that goes away (HTTP client hung up) doesn't unqueue it.
        return await asyncio.shield(job.future)

    def release(self, owner: str) -> None:
        """`owner` is gone (data channel or peer closed): drop its pending moves and stop
        its current move."""
        self._heard.pop(owner, None)
        for job in [j for j in self._pending if j.owner == owner and isinstance(j.command, Move)]:
            self._pending.remove(job)
            job.resolve(Outcome.failed(ErrorKind.CLOSED, "the controlling viewer left"))
        if self._motion is not None and self._motion.owner == owner:
            self._auto_stop(f"{owner[:8]} left")

    async def close(self) -> None:
        """Stop any move, then end the worker. Pending commands get an error reply."""
        if self._closed:
            return
        self._closed = True
        self._cancel_timer()
        for job in self._pending:
            job.resolve(Outcome.failed(ErrorKind.CLOSED, "PTZ control is shutting down"))
        self._pending.clear()
        if self._motion is not None:
            self._pending.append(_Job(Stop(), SYSTEM, received_at=time.monotonic()))
        self._pending.append(_Job(None, SYSTEM))
        worker = self._worker
        if worker is None and self._motion is not None:
            self._start_worker()
            worker = self._worker
        if worker is None:
            return
        self._wakeup.set()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await asyncio.shield(worker)
        except TimeoutError:
            log.warning("camera %s: PTZ did not stop in time on shutdown", self.camera)
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    # --- admission --------------------------------------------------------------------

    def _refusal(self, command: PtzCommand) -> str | None:
        """Why the camera can't do `command`, when its capabilities are known."""
        caps = self.backend.capabilities
        if not caps.any:
            return None  # not known yet (camera not reached): the backend decides
        if isinstance(command, Move):
            if (command.pan or command.tilt) and not caps.pan_tilt:
                return "this camera cannot pan or tilt"
            if command.zoom and not caps.zoom:
                return "this camera cannot zoom"
        elif isinstance(command, Relative) and not caps.relative:
            return "this camera cannot move by a relative amount"
        elif isinstance(command, Absolute) and not caps.absolute:
            return "this camera has no absolute positions"
        elif isinstance(command, Home) and not caps.home:
            return "this camera has no home position"
        elif (
            isinstance(command, GotoPreset | SetPreset | RemovePreset | ListPresets)
            and not caps.presets
        ):
            return "this camera has no presets"
        return None

    def _refresh(self, owner: str) -> Outcome:
        mine = (self._motion is not None and self._motion.owner == owner) or any(
            j.owner == owner and isinstance(j.command, Move) for j in self._pending
        )
        if mine:
            self._heard[owner] = self._now()
        return Outcome(extra={"moving": mine})

    def _enqueue_motion(self, job: _Job) -> None:
        for old in [j for j in self._pending if isinstance(j.command, Move)]:
            self._pending.remove(old)
            old.resolve(Outcome(extra={"superseded": True}))
        if isinstance(job.command, Move):
            if job.held:
                self._heard[job.owner] = self._now()
            self._pending.append(job)
            return
        last = self._pending[-1] if self._pending else None
        if last is not None and isinstance(last.command, Stop) and isinstance(job.command, Stop):
            # Back to back: one Stop of both sets of axes does the same.
            merged = Stop(
                last.command.pan_tilt or job.command.pan_tilt,
                last.command.zoom or job.command.zoom,
            )
            last.command = merged
            last.owner = job.owner if last.owner == SYSTEM else last.owner  # someone asked
            assert job.future is not None
            _chain(last, job.future)
            return
        self._pending.append(job)

    def _auto_stop(self, why: str) -> None:
        """Stop the current motion ahead of queued commands, unless a pending Move/Stop
        (which replaces the current motion anyway) is already on its way."""
        if self._closed or any(_is_motion(j) for j in self._pending):
            return
        log.info("camera %s: PTZ stop (%s)", self.camera, why)
        self._pending.appendleft(_Job(Stop(), SYSTEM, received_at=time.monotonic()))
        self._start_worker()

    # --- timers -----------------------------------------------------------------------

    def _now(self) -> float:
        return self._timebase().time()

    def _timebase(self) -> Clock:
        return self._clock if self._clock is not None else asyncio.get_running_loop()

    def _deadline(self, motion: _Motion) -> float:
        limit = min(motion.duration or self.max_move_s, self.max_move_s)
        deadline = motion.started + limit
        if motion.held:
            heard = self._heard.get(motion.owner, motion.started)
            deadline = min(deadline, heard + self.deadman_s)
        return deadline

    def _arm(self) -> None:
        self._cancel_timer()
        motion = self._motion
        if motion is not None and not self._closed:
            self._timer = self._timebase().call_at(self._deadline(motion), self._expire)
            if motion.camera_stops_at is not None:
                renew_at = motion.camera_stops_at - CAMERA_TIMEOUT_MARGIN_S / 2
                self._renew_timer = self._timebase().call_at(renew_at, self._renew)

    def _cancel_timer(self) -> None:
        for timer in (self._timer, self._renew_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._renew_timer = None

    def _renew(self) -> None:
        """The camera is about to stop by itself: send the move again if it must go on."""
        self._renew_timer = None
        motion = self._motion
        if motion is None or motion.command is None or motion.camera_stops_at is None:
            return
        if self._closed or any(_is_motion(j) for j in self._pending):
            return  # a Move or Stop on its way replaces it anyway
        if not motion.held and self._deadline(motion) <= motion.camera_stops_at:
            return  # the camera stops no sooner than camgate would
        renewal = _Job(motion.command, motion.owner, motion.held, time.monotonic(), renewal=True)
        self._pending.appendleft(renewal)
        self._start_worker()

    def _expire(self) -> None:
        self._timer = None
        motion = self._motion
        if motion is None:
            return
        if self._now() < self._deadline(motion) - TIMER_SLACK_S:
            self._arm()  # refreshed since the timer was set (refresh doesn't re-arm)
            return
        self._auto_stop("dead-man" if motion.held else "move time over")

    # --- the worker -------------------------------------------------------------------

    def _start_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(
                self._work(), name=f"ptz:{self.camera}"
            )
        self._wakeup.set()

    async def _work(self) -> None:
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            job = self._pending.popleft()
            if job.command is None:
                return
            try:
                outcome = await self._run(job.command, job)
            except Exception:  # a backend bug must not end the worker
                log.exception("camera %s: PTZ %s failed", self.camera, job.command.cmd)
                outcome = Outcome.failed(ErrorKind.CAMERA, "PTZ error (see the gateway log)")
            job.resolve(outcome)

    async def _run(self, command: PtzCommand, job: _Job) -> Outcome:
        backend = self.backend
        if isinstance(command, Move):
            if job.renewal:
                if self._motion is None or self._motion.command is not command:
                    return OK  # the move ended while the renewal waited
                return await self._send_move(job, self._motion)
            previous = self._motion
            motion = _Motion(job.owner, job.held, self._now(), command.duration, command)
            self._motion = motion
            self._arm()
            outcome = await self._send_move(job, motion)
            if outcome.kind is ErrorKind.CAMERA:
                self._motion = previous  # the camera refused: whatever it did goes on
                self._arm()
            return outcome
        if isinstance(command, Stop):
            outcome = await self._call(job, backend.stop(command.pan_tilt, command.zoom))
            self._after_stop(command, outcome)
            return outcome
        if isinstance(command, Relative):
            coro = backend.relative_move(command.pan, command.tilt, command.zoom, command.speed)
            return self._positioned(await self._call(job, coro))
        if isinstance(command, Absolute):
            coro = backend.absolute_move(command.pan, command.tilt, command.zoom, command.speed)
            return self._positioned(await self._call(job, coro))
        if isinstance(command, Home):
            return self._positioned(await self._call(job, backend.home(command.speed)))
        if isinstance(command, GotoPreset):
            preset = await self._find_preset(job, command.preset)
            if isinstance(preset, Outcome):
                return preset
            outcome = await self._call(job, backend.goto_preset(preset.token))
            if not outcome.ok:
                self._presets = None  # perhaps removed on the camera itself
            return self._positioned(outcome)
        if isinstance(command, SetPreset):
            return await self._set_preset(job, command.name)
        if isinstance(command, RemovePreset):
            preset = await self._find_preset(job, command.preset)
            if isinstance(preset, Outcome):
                return preset
            outcome = await self._call(job, backend.remove_preset(preset.token))
            self._presets = None
            return outcome
        if isinstance(command, ListPresets):
            presets = await self._load_presets(job)
            if isinstance(presets, Outcome):
                return presets
            return Outcome(extra={"presets": [_preset_json(p) for p in presets]})
        raise AssertionError(f"unhandled PTZ command {command!r}")  # Refresh never queues

    async def _send_move(self, job: _Job, motion: _Motion) -> Outcome:
        """ContinuousMove, asking the camera to stop by itself a margin after camgate would."""
        command = motion.command
        assert command is not None
        sent = self._now()
        timeout = max(self._deadline(motion) - sent, 0.0) + CAMERA_TIMEOUT_MARGIN_S
        applied: list[float | None] = []

        async def send() -> None:
            applied.append(
                await self.backend.continuous_move(
                    command.pan, command.tilt, command.zoom, timeout=timeout
                )
            )

        outcome = await self._call(job, send())
        if outcome.ok and self._motion is motion and applied and applied[0] is not None:
            motion.camera_stops_at = sent + applied[0]
            self._arm()
        return outcome

    def _after_stop(self, command: Stop, outcome: Outcome) -> None:
        motion = self._motion
        if motion is None:
            return
        if outcome.ok:
            if command.pan_tilt and command.zoom:
                self._motion = None
                self._cancel_timer()
            return
        # The camera may still be moving: try again later, a few times.
        motion.stop_failures += 1
        if motion.stop_failures >= STOP_RETRIES:
            log.warning("camera %s: PTZ stop failed %d times; giving up", self.camera, STOP_RETRIES)
            self._motion = None
            self._cancel_timer()
            return
        self._cancel_timer()
        self._timer = self._timebase().call_at(self._now() + self.deadman_s, self._retry_stop)

    def _retry_stop(self) -> None:
        self._timer = None
        if self._motion is not None:
            self._auto_stop("retry")

    def _positioned(self, outcome: Outcome) -> Outcome:
        """A positional move replaces a continuous one on the camera: forget that one, and
        don't let an automatic Stop queued for it cut the new move short."""
        if outcome.ok:
            self._motion = None
            self._cancel_timer()
            for job in [j for j in self._pending if j.owner == SYSTEM and _is_motion(j)]:
                self._pending.remove(job)
        return outcome

    async def _call(self, job: _Job, request: Any) -> Outcome:
        """Await one backend request, timed and bounded; failures become Outcomes."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.command_timeout_s):
                extra = await request
        except TimeoutError as exc:
            # A backend PtzError that is also a TimeoutError reports its own timeout.
            message = str(exc) if isinstance(exc, PtzError) else ""
            outcome = Outcome.failed(
                ErrorKind.TIMEOUT,
                message or f"the camera did not answer within {self.command_timeout_s:g} s",
            )
        except PtzError as exc:
            outcome = Outcome.failed(ErrorKind.CAMERA, str(exc) or "the PTZ command failed")
        else:
            outcome = Outcome(extra=extra) if isinstance(extra, dict) else OK
        self._record(job, started, outcome.ok)
        return outcome

    def _record(self, job: _Job, started: float, ok: bool) -> None:
        assert job.command is not None
        timing = CommandTiming(job.command.cmd, job.received_at, started, time.monotonic(), ok)
        self.timings.append(timing)
        if self.on_timing is not None:
            self.on_timing(timing)

    # --- presets ----------------------------------------------------------------------

    async def _load_presets(self, job: _Job) -> list[Preset] | Outcome:
        holder: list[list[Preset]] = []

        async def fetch() -> None:
            holder.append(await self.backend.presets())

        outcome = await self._call(job, fetch())
        if not outcome.ok:
            return outcome
        self._presets = holder[0]
        if self.on_presets is not None:
            self.on_presets(list(self._presets))
        return self._presets

    async def _find_preset(self, job: _Job, wanted: str) -> Preset | Outcome:
        """The preset named or tokened `wanted`: from the cache, else from the camera."""
        if self._presets is not None:
            found = _match_preset(self._presets, wanted)
            if found is not None:
                return found
        presets = await self._load_presets(job)
        if isinstance(presets, Outcome):
            return presets
        found = _match_preset(presets, wanted)
        if found is None:
            return Outcome.failed(ErrorKind.REJECTED, f"no preset {wanted!r} on this camera")
        return found

    async def _set_preset(self, job: _Job, name: str) -> Outcome:
        presets = await self._load_presets(job)
        if isinstance(presets, Outcome):
            return presets
        if any(p.name == name for p in presets):
            return Outcome.failed(
                ErrorKind.REJECTED, f"a preset named {name!r} exists: remove it first"
            )
        limit = self.backend.capabilities.max_presets
        if limit and len(presets) >= limit:
            return Outcome.failed(
                ErrorKind.REJECTED, f"the camera holds at most {limit} presets: remove one first"
            )
        holder: list[str] = []

        async def save() -> None:
            holder.append(await self.backend.set_preset(name))

        outcome = await self._call(job, save())
        self._presets = None
        if not outcome.ok:
            return outcome
        return Outcome(extra={"preset": {"token": holder[0], "name": name}})


def _is_motion(job: _Job) -> bool:
    return isinstance(job.command, Move | Stop)


def _chain(job: _Job, future: asyncio.Future[Outcome]) -> None:
    """`future` gets the outcome of `job` (a merged Stop answers both senders)."""
    first = job.future
    if first is None:
        job.future = future
        return

    def copy(done: asyncio.Future[Outcome]) -> None:
        if not future.done():
            future.set_result(done.result())

    first.add_done_callback(copy)


def _match_preset(presets: list[Preset], wanted: str) -> Preset | None:
    """By token, then by name, then by a name that matches ignoring case (if only one)."""
    for found in (
        [p for p in presets if p.token == wanted],
        [p for p in presets if p.name == wanted],
    ):
        if found:
            return found[0]
    folded = [p for p in presets if p.name.casefold() == wanted.casefold()]
    return folded[0] if len(folded) == 1 else None


def _preset_json(preset: Preset) -> dict[str, str]:
    return {"token": preset.token, "name": preset.name}

"""CameraHub: one upstream connection per camera, shared by every viewer.

The hub owns the source's lifecycle (start on first viewer or at boot with `preload`,
stop after the last viewer leaves plus a linger period), reconnects with capped
backoff while viewers stay connected, normalises the stream and keeps the current GOP
so a new viewer sees a picture at once instead of waiting for the camera's next IDR.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.audio.fanout import AudioFanout, TranscoderFactory
from gateway.audio.subscription import AudioSubscription
from gateway.camera_status import CameraState, CameraStatus, StreamStatus
from gateway.media.accessunit import VIDEO_CLOCK_RATE, AccessUnit
from gateway.media.continuity import Admission, ContinuityGate
from gateway.media.gop import GopCache
from gateway.media.limits import StreamLimits
from gateway.media.normalizer import StreamNormalizer
from gateway.sources.base import NoSubstreamError, Source, SourceError, SourceLimitError
from gateway.subscription import Subscription
from gateway.tasks import spawn

if TYPE_CHECKING:
    from gateway.talkback.camera import CameraTalk

log = logging.getLogger("camgate.hub")

BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 30.0
BACKOFF_WATCHED_MAX_S = 2.0
# A retry woken by a request (viewer, snapshot, API) still waits this long after the
# previous attempt began: a page polling a dead camera must not become a connect storm.
WAKE_MIN_INTERVAL_S = 1.0
PROBE_INTERVAL_S = 1.0  # while backing off: is the camera back? (a bare TCP connect)
STOP_TIMEOUT_S = 5.0  # per cancel: a source that swallowed one gets another
KEYFRAME_REQUEST_INTERVAL_S = 1.0
# A new viewer of a camera that makes keyframes on request gets the cached GOP only when
# it is this short (~1/3 s at 30 fps); otherwise it waits for the IDR made for it.
FRESH_GOP_MAX_FRAMES = 10
FRESH_KEYFRAME_WAIT_S = 0.5  # how long an asked-for IDR may take before it counts as lost
RATE_WINDOW_S = 2.0
# A camera that was live and then failed this many times in a row is called offline.
OFFLINE_AFTER_FAILURES = 3

B_FRAME_WARNING = (
    "the camera sends B-frames: browsers show only about one picture a second. "
    "Switch B-frames off in the camera's video encoder settings: set 'B-frames' "
    "(or 'B-frame count') to 0, 'GOP structure' from IBBP to IP, the H.264 profile to "
    "Baseline (or Main without B-frames), and 'Smart codec' (H.264+, Smart Codec) off."
)


@dataclass
class _RateMeter:
    """Frames and bytes over a sliding window, for fps and bitrate."""

    window_s: float = RATE_WINDOW_S

    def __post_init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, size: int) -> None:
        self._samples.append((now, size))
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._samples and now - self._samples[0][0] > self.window_s:
            self._samples.popleft()

    def rates(self, now: float) -> tuple[float, float]:
        """(frames per second, kilobits per second)."""
        self._trim(now)
        if len(self._samples) < 2:
            return 0.0, 0.0
        span = max(now - self._samples[0][0], 1e-3)
        total_bytes = sum(size for _, size in self._samples)
        return len(self._samples) / span, total_bytes * 8 / 1000 / span


class CameraHub:
    def __init__(
        self,
        name: str,
        source_factory: Callable[[], Source],
        *,
        preload: bool = False,
        linger_s: float = 10.0,
        description: str = "",
        clock: Callable[[], float] = time.monotonic,
        limits: StreamLimits | None = None,
        audio: bool = True,
        audio_transcoder: TranscoderFactory | None = None,
    ) -> None:
        self.name = name
        # The camera's sound (`audio: off` in its config: none), shared by every listener.
        self.audio = AudioFanout(name, enabled=audio, transcoder_factory=audio_transcoder)
        self.limits = limits or StreamLimits()
        self.talk: CameraTalk | None = None  # talk back, where app.py sets it up
        # The camera's second, smaller stream (its own hub, named "<camera>~sub"), where
        # it has one: grid tiles watch it (gateway/feed.py). Set by app.py.
        self.substream: CameraHub | None = None
        # This hub's camera turned out to have no such stream (NoSubstreamError).
        self.absent = False
        self.switches: dict[str, int] = {}  # viewers' stream switches by reason (/metrics)
        self._source_factory = source_factory
        self._preload = preload
        self._linger_s = linger_s
        self._clock = clock
        self._subscriptions: set[Subscription] = set()
        self._holds = 0  # non-viewer users keeping the camera connected (snapshots)
        self._keyframe_waiters: list[asyncio.Future[AccessUnit]] = []
        self._listeners: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._linger_handle: asyncio.TimerHandle | None = None
        self._source: Source | None = None
        self._gop = GopCache(max_bytes=self.limits.gop_bytes)
        self._normalizer = StreamNormalizer()
        self._rate = _RateMeter()
        self._state = CameraState.IDLE
        self._ever_live = False
        self._consecutive_failures = 0
        self._last_keyframe_request = -KEYFRAME_REQUEST_INTERVAL_S
        self._keyframe_retry: asyncio.TimerHandle | None = None
        self._keyframe_asked_at: float | None = None  # an IDR asked of the source, not yet here
        self._pts_offset = 0
        self._last_pts: int | None = None
        self._frame_interval = VIDEO_CLOCK_RATE // 30
        self._new_connection = True
        self._continuity = ContinuityGate()
        # The newest IDR passed on, kept while the camera is idle: a tile's poster.
        self.last_keyframe: AccessUnit | None = None
        self._source_losses = 0  # the current source's `discontinuities` already handled
        self._wake = asyncio.Event()
        self._attempt_started = -WAKE_MIN_INTERVAL_S
        self.error: str | None = None
        self.reconnects = 0
        self.frames_received = 0
        self.keyframes_received = 0
        self.dropped_frames_closed = 0  # drops of viewers that have left
        self.limit_drops = 0  # connections given up for data past a cap (media.limits)
        self._live_event = asyncio.Event()
        self.description = description  # shown in the API: never a credential

    # --- lifecycle --------------------------------------------------------------------

    @property
    def state(self) -> CameraState:
        return self._state

    @property
    def ever_live(self) -> bool:
        """It has been live since camgate started (its stream's facts, audio included,
        are known, if only as they were)."""
        return self._ever_live

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Connect now (preload) or keep the connection; idempotent. A camera waiting
        out a retry backoff is retried at once: someone wants it now."""
        self._cancel_linger()
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"camera:{self.name}"
            )
        else:
            self.wake()

    def wake(self) -> None:
        """Cut a retry backoff short (a request for the camera came in); no-op when
        the camera is connected or idle."""
        self._wake.set()

    async def boot(self) -> None:
        if self._preload:
            self.start()

    async def stop(self) -> None:
        self._cancel_linger()
        if self._keyframe_retry is not None:
            self._keyframe_retry.cancel()
            self._keyframe_retry = None
        task, self._task = self._task, None
        if task is not None:
            await _cancel_bounded(task, f"camera {self.name}")
        self._set_state(CameraState.IDLE)

    async def close(self) -> None:
        for sub in list(self._subscriptions):
            sub.close()
        self._subscriptions.clear()
        self.audio.close()
        await self.stop()

    # --- viewers ----------------------------------------------------------------------

    def subscribe(self) -> Subscription:
        sub = Subscription(
            self._frames_for_new_viewer,
            on_first_get=self._on_viewer_started,
            live_limit_bytes=self.limits.viewer_queue_bytes,
        )
        self._subscriptions.add(sub)
        self.start()
        if self._makes_fresh_keyframes():
            # Ask now: the IDR is made while the viewer's connection is being set up.
            self.request_keyframe()
        self._notify()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.discard(sub)
            self.dropped_frames_closed += sub.dropped
            self._notify()
        sub.close()
        self._linger_if_unused()

    def subscribe_audio(self) -> AudioSubscription | None:
        """A viewer that also listens (call with its subscribe()); None when the camera
        has no audio camgate can send. Its format is `self.audio.output_format`."""
        sub = self.audio.subscribe()
        if sub is not None:
            self._notify()
        return sub

    def unsubscribe_audio(self, sub: AudioSubscription) -> None:
        self.audio.unsubscribe(sub)
        self._notify()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep the camera connected without being a viewer (e.g. to take a snapshot);
        the usual linger applies after the last user leaves."""
        self._holds += 1
        self.start()
        try:
            yield
        finally:
            self._holds -= 1
            self._linger_if_unused()

    async def keyframe(self, timeout: float, newer_than: AccessUnit | None = None) -> AccessUnit:
        """The latest IDR picture (with SPS/PPS): the cached one, else the next to arrive;
        never `newer_than` itself (one that proved undecodable). Call inside hold() when
        the camera may be idle. Raises TimeoutError."""
        frames = self._gop.frames()
        if frames and frames[0].keyframe and frames[0] is not newer_than:
            return frames[0]
        waiter: asyncio.Future[AccessUnit] = asyncio.get_running_loop().create_future()
        self._keyframe_waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout)
        finally:
            if waiter in self._keyframe_waiters:
                self._keyframe_waiters.remove(waiter)

    def add_listener(self, listener: Callable[[], None]) -> None:
        """`listener()` runs on every change of state or viewer count."""
        self._listeners.append(listener)

    def attach_substream(self, sub: CameraHub) -> None:
        """`sub` is this camera's second stream: its changes are this camera's changes
        (API, MQTT and /metrics list both streams)."""
        self.substream = sub
        sub.add_listener(self._notify)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def count_switch(self, reason: str) -> None:
        self.switches[reason] = self.switches.get(reason, 0) + 1

    def start_frames(self) -> list[AccessUnit]:
        """What a viewer switching to this stream starts with: the cached GOP (from
        its keyframe), or nothing while there is none to start at."""
        frames = self._frames_for_new_viewer()
        return frames if frames and frames[0].keyframe else []

    def _notify(self) -> None:
        for listener in self._listeners:
            try:
                listener()
            except Exception:  # a listener's bug must not break the camera
                log.exception("camera %s: change listener failed", self.name)

    def _in_use(self) -> bool:
        return bool(self._subscriptions or self._holds or self._preload)

    def _linger_if_unused(self) -> None:
        if not self._in_use() and self.running:
            self._cancel_linger()
            self._linger_handle = asyncio.get_running_loop().call_later(
                self._linger_s, self._linger_expired
            )

    @property
    def profile_level_id(self) -> str | None:
        info = self._normalizer.info
        return info.profile_level_id if info else None

    @property
    def discontinuities(self) -> int:
        """Times the stream broke while live (reconnects, losses, frame gaps)."""
        return self._continuity.discontinuities

    @property
    def frames_held(self) -> int:
        """Pictures not passed on because they refer to pictures lost upstream."""
        return self._continuity.held

    @property
    def viewers(self) -> int:
        return len(self._subscriptions)

    @property
    def dropped_frames(self) -> int:
        return self.dropped_frames_closed + sum(s.dropped for s in self._subscriptions)

    def request_keyframe(self) -> None:
        """A viewer lost a picture (PLI/FIR) or joined: ask the source for an IDR, at most
        once a second (a lossy viewer must not make everyone's bitrate explode). A request
        inside that second is kept and sent when the second is over."""
        wait = self._last_keyframe_request + KEYFRAME_REQUEST_INTERVAL_S - self._clock()
        if wait > 0:
            if self._keyframe_retry is None:
                self._keyframe_retry = asyncio.get_running_loop().call_later(
                    wait, self._retry_keyframe
                )
            return
        self._last_keyframe_request = self._clock()
        if self._source is not None and self._source.request_keyframe():
            self._keyframe_asked_at = self._last_keyframe_request

    def _retry_keyframe(self) -> None:
        self._keyframe_retry = None
        self.request_keyframe()

    def _makes_fresh_keyframes(self) -> bool:
        return bool(getattr(self._source, "fresh_keyframes", False))

    def _frames_for_new_viewer(self) -> list[AccessUnit]:
        """The cached GOP, so the viewer starts at once. From a source that makes keyframes
        on request, only a short one (the IDR asked for when the viewer subscribed): a
        long GOP would be a burst for the network and the browser's decoder, while a fresh
        IDR is one frame interval away."""
        frames = self._gop.frames()
        if (
            self._makes_fresh_keyframes()
            and len(frames) > FRESH_GOP_MAX_FRAMES
            and self._keyframe_coming()
        ):
            return []
        return frames

    def _keyframe_coming(self) -> bool:
        """An IDR was asked of the source moments ago and has not come yet. (When the rate
        limit held the request back, a new viewer gets the cached GOP rather than wait.)"""
        asked = self._keyframe_asked_at
        return asked is not None and self._clock() - asked < FRESH_KEYFRAME_WAIT_S

    async def wait_live(self, timeout: float) -> None:
        await asyncio.wait_for(self._live_event.wait(), timeout)

    def _on_viewer_started(self, sub: Subscription) -> None:
        # A viewer with no cached GOP waits for an IDR: ask for one where the source can.
        if not self._frames_for_new_viewer():
            self.request_keyframe()

    def _linger_expired(self) -> None:
        self._linger_handle = None
        if not self._in_use():
            log.info("camera %s: no viewers, closing the upstream connection", self.name)
            spawn(self.stop(), f"stop-camera:{self.name}")

    def _cancel_linger(self) -> None:
        if self._linger_handle is not None:
            self._linger_handle.cancel()
            self._linger_handle = None

    # --- upstream ---------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = BACKOFF_INITIAL_S
        self._set_state(CameraState.CONNECTING)
        # Ends when stop() has let go of this task, even if a cancel was swallowed on
        # the way (asyncio.wait_for can lose one when its inner future just finished).
        while self._task is asyncio.current_task():
            source = self._source_factory()
            self._source = source
            self.audio.attach(source)
            self._new_connection = True
            self._source_losses = 0
            # The camera kept encoding while we were away: what it sends next refers
            # to pictures no viewer has. Hold everything until an IDR.
            self._continuity.interrupt()
            self._gop.clear()  # what was cached is not the camera's current picture
            self._attempt_started = self._clock()
            self._wake.clear()
            frames_before = self.frames_received
            try:
                await source.run(self._on_unit)
                raise SourceError("the stream ended")
            except SourceError as exc:
                self.error = str(exc)
                self.absent = isinstance(exc, NoSubstreamError)
                self.limit_drops += isinstance(exc, SourceLimitError)
            except Exception as exc:  # a bug in a source must not kill the camera
                log.exception("camera %s: source failed unexpectedly", self.name)
                self.error = f"internal error: {type(exc).__name__}"
            finally:
                self._source = None
                self.audio.detach()
            if self.frames_received > frames_before:
                backoff = BACKOFF_INITIAL_S  # it worked for a while: retry quickly
                self._consecutive_failures = 0
            self._consecutive_failures += 1
            self._gop.clear()
            self._live_event.clear()
            self._set_state(self._failure_state())
            delay = min(backoff, self._backoff_cap()) * random.uniform(0.8, 1.2)
            log.warning("camera %s: %s; retrying in %.1f s", self.name, self.error, delay)
            await self._back_off(delay, source)
            backoff = min(backoff * 2, BACKOFF_MAX_S)
            self.reconnects += 1

    async def _back_off(self, delay: float, source: Source) -> None:
        """Wait `delay` before the next attempt, less if someone asks for the camera
        (wake()) or the camera is seen coming back (its port accepts connections again
        after refusing them or not answering)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        probe = getattr(source, "probe", None)
        # Down if the failed attempt could not even connect; a camera that answered and
        # failed otherwise (e.g. a wrong password) is retried on schedule, not per probe.
        was_down = not getattr(source, "connected", True)
        while (left := deadline - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(left, PROBE_INTERVAL_S))
            if self._wake.is_set():
                # Not sooner than WAKE_MIN_INTERVAL_S after the previous attempt.
                rest = self._attempt_started + WAKE_MIN_INTERVAL_S - self._clock()
                await asyncio.sleep(max(0.0, min(rest, deadline - loop.time())))
                return
            if probe is not None and loop.time() < deadline:
                up = await probe()
                if up and was_down:
                    log.info("camera %s: reachable again, retrying now", self.name)
                    return
                was_down = not up

    def _backoff_cap(self) -> float:
        """While someone is watching, retry often so video is back within seconds of the
        camera; with nobody watching, back off fully and leave the camera alone."""
        return BACKOFF_WATCHED_MAX_S if self._subscriptions else BACKOFF_MAX_S

    def _failure_state(self) -> CameraState:
        if self._ever_live and self._consecutive_failures < OFFLINE_AFTER_FAILURES:
            return CameraState.RECONNECTING
        return CameraState.OFFLINE

    def _on_unit(self, unit: AccessUnit) -> None:
        """Every picture from the source passes here once, then fans out."""
        if self._new_connection and self._source is not None:
            # Out-of-band SPS/PPS (RTSP sprop-parameter-sets) are known once the source
            # has connected, i.e. by its first picture.
            self._normalizer = StreamNormalizer(self._source.sdp_parameter_sets)
        unit = self._normalizer.process(self._rebase(unit))
        if self._normalizer.refused is not None:
            raise SourceError(f"{self._normalizer.refused}: refused")
        self.frames_received += 1
        self.keyframes_received += unit.keyframe
        self._rate.add(self._clock(), unit.size)
        if not self._continuous(unit):
            return
        self._gop.add(unit)
        if unit.keyframe:
            self._keyframe_asked_at = None
            self.last_keyframe = unit
        if unit.keyframe and self._keyframe_waiters:
            waiters, self._keyframe_waiters = self._keyframe_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(unit)
        if self._state is not CameraState.LIVE and unit.keyframe:
            self._ever_live = True
            self.absent = False
            self._consecutive_failures = 0
            self.error = None
            self._set_state(CameraState.LIVE)
            self._live_event.set()
        for sub in self._subscriptions:
            sub.push(unit)

    def _continuous(self, unit: AccessUnit) -> bool:
        """False for a picture that refers to pictures lost upstream: no viewer, no
        cache and no snapshot gets it. The first loss of a run asks for an IDR."""
        losses = getattr(self._source, "discontinuities", 0)
        if losses != self._source_losses:
            self._source_losses = losses
            if self._continuity.interrupt():
                self._on_discontinuity("pictures lost on the way from the camera")
        admission = self._continuity.admit(unit)
        if admission is Admission.BREAK:
            self._on_discontinuity("a gap in the camera's frame numbers")
        return admission is Admission.PASS

    def _on_discontinuity(self, why: str) -> None:
        log.info("camera %s: %s; holding the picture until the next keyframe", self.name, why)
        self._gop.clear()  # restarts with the IDR that ends the hold
        self.request_keyframe()

    def _rebase(self, unit: AccessUnit) -> AccessUnit:
        """Keep one continuous timeline across reconnects (a new RTSP session starts
        its RTP clock anywhere), so connected viewers see no timestamp jump."""
        if self._new_connection:
            self._new_connection = False
            if self._last_pts is None:
                self._pts_offset = -unit.pts
            else:
                self._pts_offset = self._last_pts + self._frame_interval - unit.pts
        pts = unit.pts + self._pts_offset
        if self._last_pts is not None and pts > self._last_pts:
            # Remember the typical spacing for the next reconnect's first frame.
            self._frame_interval = min(pts - self._last_pts, VIDEO_CLOCK_RATE)
        self._last_pts = pts
        if pts == unit.pts:
            return unit
        return AccessUnit(unit.nals, pts, unit.keyframe, unit.arrival, unit.capture)

    def _set_state(self, state: CameraState) -> None:
        if state is not self._state:
            log.info("camera %s: %s", self.name, state.value)
            self._state = state
            self._notify()

    # --- reporting --------------------------------------------------------------------

    def status(self) -> CameraStatus:
        """What the camera is doing now (API, MQTT, /metrics). Never holds a credential."""
        info = self._normalizer.info
        audio, output = self.audio.camera_format, self.audio.output_format
        fps, kbps = self._rate.rates(self._clock())
        live = self._state is CameraState.LIVE
        return CameraStatus(
            name=self.name,
            state=self._state,
            error=None if live else self.error,
            warning=B_FRAME_WARNING if info is not None and info.has_b_frames else None,
            codec="H264",
            profile=info.profile if info else None,
            profile_level_id=info.profile_level_id if info else None,
            level=info.level if info else None,
            width=info.width if info else None,
            height=info.height if info else None,
            fps=round(fps, 2) if live else 0.0,
            bitrate_kbps=round(kbps, 1) if live else 0.0,
            gop_frames=len(self._gop.frames()),
            viewers=self.viewers + (self.substream.viewers if self.substream else 0),
            dropped_frames=self.dropped_frames,
            reconnects=self.reconnects,
            limit_drops=self.limit_drops + self._gop.overflows,
            discontinuities=self.discontinuities,
            source=self.description,
            frames_received=self.frames_received,
            audio_codec=audio.codec if audio else None,
            audio_rate=audio.clock_rate if audio else None,
            audio_channels=audio.channels if audio else None,
            audio_output=output.codec if output else None,
            audio_refused=self.audio.refused,
            listeners=self.audio.listeners,
            talk=self.talk is not None and self.talk.available,
            talk_codec=self.talk.codec if self.talk is not None else None,
            streams=self._streams(info.profile if info else None, fps, kbps),
            switches=dict(self.switches),
        )

    def stream_status(self, name: str) -> StreamStatus:
        """This hub's stream as the camera object's `streams` lists it."""
        info = self._normalizer.info
        fps, kbps = self._rate.rates(self._clock())
        return self._stream(name, info.profile if info else None, fps, kbps)

    def _stream(self, name: str, profile: str | None, fps: float, kbps: float) -> StreamStatus:
        info = self._normalizer.info
        live = self._state is CameraState.LIVE
        return StreamStatus(
            name=name,
            width=info.width if info else None,
            height=info.height if info else None,
            fps=round(fps, 2) if live else 0.0,
            bitrate_kbps=round(kbps, 1) if live else 0.0,
            profile=profile,
            state=self._state,
        )

    def _streams(self, profile: str | None, fps: float, kbps: float) -> tuple[StreamStatus, ...]:
        main = self._stream("main", profile, fps, kbps)
        sub = self.substream
        if sub is None or sub.absent:
            return (main,)
        return (main, sub.stream_status("sub"))


async def _cancel_bounded(task: asyncio.Task[None], what: str) -> None:
    """Cancel `task` and wait for it, cancelling again (a cancel can be swallowed) and
    giving up with an error after a few rounds rather than hang a shutdown."""
    for _ in range(3):
        task.cancel()
        await asyncio.wait([task], timeout=STOP_TIMEOUT_S)
        if task.done():
            if not task.cancelled() and task.exception() is not None:
                log.error("%s: failed while stopping", what, exc_info=task.exception())
            return
    log.error("%s: did not stop within %g s; left behind", what, 3 * STOP_TIMEOUT_S)

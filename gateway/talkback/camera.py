"""One camera's talk back: whether it can (its backchannel, probed once and cached), who
holds the floor (one speaker at a time, for at most `max_talk_s`), and the backchannel
session, opened when someone starts talking and closed `linger_s` after they stop (a
quick "stop, start" does not cost a new RTSP session)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

import av

from gateway.talkback.backchannel import BackchannelSession, TalkError
from gateway.talkback.encoder import TalkEncoder
from gateway.talkback.sdp import Backchannel, BackchannelUnsupported
from gateway.tasks import spawn

log = logging.getLogger("camgate.talk")

MAX_TALK_S = 60.0
LINGER_S = 3.0

# Where the camera's RTSP URL comes from (with credentials): fixed, or asked of ONVIF.
Locate = Callable[[], Awaitable[str]]
# Told why the speaker's turn ended without them asking (max talk time, camera gone).
OnEnd = Callable[[str], None]


class Reply(StrEnum):
    GRANTED = "granted"
    BUSY = "busy"
    NOT_ALLOWED = "not allowed"
    UNSUPPORTED = "unsupported"
    ENDED = "ended"
    ERROR = "error"


@dataclass(frozen=True)
class Answer:
    reply: Reply
    message: str | None = None  # why, in words safe to show


@dataclass
class _Turn:
    owner: str
    on_end: OnEnd
    encoder: TalkEncoder | None = None
    deadline: asyncio.TimerHandle | None = None


class CameraTalk:
    def __init__(
        self,
        name: str,
        locate: Locate | None,
        *,
        max_talk_s: float = MAX_TALK_S,
        linger_s: float = LINGER_S,
        timeout_s: float = 5.0,
        off_reason: str = "talk back is off for this camera",
    ) -> None:
        self.name = name
        self._locate = locate  # None: `backchannel: off`, or a camera without RTSP
        self.max_talk_s = max_talk_s
        self.linger_s = linger_s
        self.timeout_s = timeout_s
        self.backchannel: Backchannel | None = None
        self.unsupported: str | None = None if locate else off_reason
        self._probe_lock = asyncio.Lock()
        self._turn: _Turn | None = None
        self._session: BackchannelSession | None = None
        self._open_lock = asyncio.Lock()
        self._linger: asyncio.TimerHandle | None = None
        self.sessions_opened = 0

    # --- what the camera can do --------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Talk may work: on in the config, and no probe has said it can't."""
        return self.unsupported is None

    @property
    def available(self) -> bool:
        return self.backchannel is not None

    @property
    def codec(self) -> str | None:
        return self.backchannel.codec if self.backchannel else None

    @property
    def speaker(self) -> str | None:
        return self._turn.owner if self._turn else None

    async def probe(self) -> Backchannel | None:
        """Learn the camera's backchannel once (DESCRIBE with the Require header). A
        camera that cannot be reached is asked again next time."""
        async with self._probe_lock:
            if self.backchannel is not None or self._locate is None or not self.enabled:
                return self.backchannel
            session: BackchannelSession | None = None
            try:
                session = BackchannelSession(await self._locate(), self.timeout_s)
                self.backchannel = await session.describe()
                log.info("camera %s: can talk back (%s)", self.name, self.backchannel.codec)
            except BackchannelUnsupported as exc:
                self.unsupported = str(exc)
                log.info("camera %s: no talk back: %s", self.name, exc)
            except TalkError as exc:
                log.warning("camera %s: backchannel probe failed: %s", self.name, exc)
                raise
            finally:
                if session is not None:
                    await session.close()
            return self.backchannel

    # --- the floor ---------------------------------------------------------------------

    async def start(self, owner: str, on_end: OnEnd) -> Answer:
        """`owner` (a viewer session) asks to talk."""
        if self._turn is not None:
            if self._turn.owner == owner:
                return Answer(Reply.GRANTED, self.codec)
            return Answer(Reply.BUSY, "someone else is talking to this camera")
        if not self.enabled:
            return Answer(Reply.UNSUPPORTED, self.unsupported)
        turn = _Turn(owner, on_end)
        self._turn = turn  # before any await: a second speaker meanwhile gets "busy"
        try:
            if self.backchannel is None:
                await self.probe()
            if self.backchannel is None:
                self._turn = None
                return Answer(Reply.UNSUPPORTED, self.unsupported)
            session = await self._open()
            turn.encoder = TalkEncoder(session.backchannel or self.backchannel)
        except TalkError as exc:
            if self._turn is turn:
                self._turn = None
            return Answer(Reply.ERROR, str(exc))
        except BaseException:
            if self._turn is turn:
                self._turn = None
            raise
        if self._turn is not turn:  # released while the backchannel opened
            return Answer(Reply.ENDED, None)
        if session.packetizer is not None:
            session.packetizer.new_spurt()
        loop = asyncio.get_running_loop()
        turn.deadline = loop.call_later(self.max_talk_s, self._expire, turn)
        log.info("camera %s: %s talks", self.name, owner[:8])
        return Answer(Reply.GRANTED, self.codec)

    def stop(self, owner: str) -> bool:
        """The speaker lets go (released the button, or left); False if not theirs."""
        turn = self._turn
        if turn is None or turn.owner != owner:
            return False
        self._end(turn)
        return True

    def _expire(self, turn: _Turn) -> None:
        if self._turn is turn:
            self._end(turn)
            turn.on_end(f"talk time is limited to {self.max_talk_s:g} s")

    def _end(self, turn: _Turn) -> None:
        self._turn = None
        if turn.deadline is not None:
            turn.deadline.cancel()
        log.info("camera %s: %s stops talking", self.name, turn.owner[:8])
        self._schedule_close()

    async def feed(self, owner: str, frame: av.AudioFrame) -> None:
        """A frame of `owner`'s voice: to the camera if they hold the floor, else dropped."""
        turn, session = self._turn, self._session
        if turn is None or turn.owner != owner or turn.encoder is None or session is None:
            return
        if not session.alive:
            self._end(turn)
            turn.on_end("the camera closed the backchannel")
            return
        encoder = turn.encoder
        if encoder.heavy:
            payloads = await asyncio.to_thread(encoder.encode, frame)
        else:
            payloads = encoder.encode(frame)
        if self._turn is not turn:
            return
        samples = encoder.backchannel.samples_per_packet
        # RFC 3640: the marker ends an access unit, and every AAC packet holds a whole one.
        marker = encoder.backchannel.codec == "AAC"
        for payload in payloads:
            session.send(payload, samples, marker)

    # --- the backchannel session ---------------------------------------------------------

    async def _open(self) -> BackchannelSession:
        async with self._open_lock:
            if self._linger is not None:
                self._linger.cancel()
                self._linger = None
            if self._session is not None and self._session.alive:
                return self._session
            if self._session is not None:
                await self._session.close()
                self._session = None
            assert self._locate is not None
            session = BackchannelSession(await self._locate(), self.timeout_s)
            try:
                await session.open()
            except BackchannelUnsupported as exc:
                await session.close()
                raise TalkError(str(exc)) from None
            except BaseException:
                await session.close()
                raise
            self.sessions_opened += 1
            self._session = session
            return session

    def _schedule_close(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
        loop = asyncio.get_running_loop()
        self._linger = loop.call_later(
            self.linger_s, lambda: spawn(self._close_idle(), f"talk-close:{self.name}")
        )

    async def _close_idle(self) -> None:
        async with self._open_lock:
            self._linger = None
            if self._turn is None and self._session is not None:
                session, self._session = self._session, None
                await session.close()

    async def close(self) -> None:
        """The gateway stops: end any turn and the backchannel now."""
        if self._turn is not None:
            turn = self._turn
            self._turn = None
            if turn.deadline is not None:
                turn.deadline.cancel()
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._session is not None:
            session, self._session = self._session, None
            with contextlib.suppress(Exception):
                await session.close()

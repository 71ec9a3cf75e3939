"""WHEP sessions: one aiortc peer connection per viewer, fed by its camera's hub."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.sdp import SessionDescription, candidate_from_sdp

from gateway.auth.roles import Identity
from gateway.compat.check import FAST, CompatReport, check_libraries
from gateway.config import IceServer
from gateway.feed import Pin, View, ViewerFeed
from gateway.hub import CameraHub, CameraState
from gateway.ptz.channel import LABEL as PTZ_LABEL
from gateway.ptz.channel import PtzChannel
from gateway.ptz.controller import PtzController
from gateway.talkback.camera import CameraTalk
from gateway.tasks import spawn
from gateway.webrtc.audio import (
    ViewerAudio,
    decline_other_audio,
    offered_audio,
    open_viewer_audio,
)
from gateway.webrtc.avsync import clock_of
from gateway.webrtc.bundle import bundle_credentials
from gateway.webrtc.codecs import prefer_camera_profile
from gateway.webrtc.congestion import CongestionWatch
from gateway.webrtc.fastsend import FastSender, SendWorkers
from gateway.webrtc.limits import (
    SessionLimiter,
    SessionLimitExceeded,
    SessionQuota,
    SessionSlot,
)
from gateway.webrtc.passthrough import PassthroughTrack, attach_fast_sender
from gateway.webrtc.sdpfrag import MAX_CANDIDATES, TrickleFragment
from gateway.webrtc.stream_channel import LABEL as STREAM_LABEL
from gateway.webrtc.stream_channel import StreamChannel
from gateway.webrtc.talk import attach_talk

log = logging.getLogger("camgate.webrtc")

MAX_OFFER_BYTES = 65_536
# A viewer whose peer connection hasn't connected by then is gone (closed tab, no route).
CONNECT_TIMEOUT_S = 30.0
PROFILE_WAIT_S = 4.0


class OfferError(ValueError):
    """The viewer's offer can't be answered; the message is safe to return to it."""


class SessionConflict(ValueError):
    """A trickle request the session can't apply (e.g. an ICE restart)."""


@dataclass
class WhepSession:
    id: str
    hub: CameraHub
    pc: RTCPeerConnection
    track: PassthroughTrack
    feed: ViewerFeed  # main or sub stream (gateway/feed.py); the track reads it
    created: float = field(default_factory=time.monotonic)
    remote_ufrag: str | None = None
    remote_candidates: int = 0  # trickled so far (capped: each one means connectivity checks)
    can_steer: bool = True  # the account that opened it may use PTZ
    send_loop: FastSender | None = None  # camgate's RTP send loop (None: aiortc's)
    audio: ViewerAudio | None = None  # the camera's sound, when the offer asked for audio
    talk_transceiver: Any = None  # the audio m-line carrying an admin's voice (talk.py)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    closed_callbacks: list[Callable[[], object]] = field(default_factory=list)
    ptz_channels: list[PtzChannel] = field(default_factory=list)
    # Who opened it (it alone may change or end it, and an admin), and whether that
    # credential still stands: asked again before every PTZ command.
    owner: Identity | None = None
    still_authorised: Callable[[], bool] = lambda: True
    stream_channels: list[StreamChannel] = field(default_factory=list)
    # The viewer's path estimate as JSON for the "stream" channel (None: none yet); the
    # congestion glue sets it.
    path_estimate: Callable[[], dict[str, Any] | None] = lambda: None
    congestion: CongestionWatch | None = None  # main or sub by this viewer's path
    # While this viewer listens in full view on a sub stream: keeps the main stream (which
    # carries the camera's sound) connected.
    audio_hold: contextlib.AbstractContextManager[None] | None = None

    def stream_switched(self) -> None:
        """The feed moved to the other stream."""
        if self.send_loop is not None:
            self.send_loop.stream_switched()
        self.streams_changed()

    def streams_changed(self) -> None:
        """Tell the viewer's "stream" channels, and keep its sound's stream as needed."""
        for channel in self.stream_channels:
            channel.send_status()
        self.sync_audio_hold()

    def sync_audio_hold(self) -> None:
        """The camera's sound comes with the main stream only: a listener in full view
        keeps it connected even when its picture is the sub stream; a grid tile does not
        (nine tiles must not keep nine main streams connected)."""
        wanted = (
            self.audio is not None
            and self.feed.view == "full"
            and self.feed.current != "main"
            and not self.closed.is_set()
        )
        if wanted and self.audio_hold is None:
            self.audio_hold = self.hub.hold()
            self.audio_hold.__enter__()
        elif not wanted and self.audio_hold is not None:
            hold, self.audio_hold = self.audio_hold, None
            hold.__exit__(None, None, None)


def rtc_configuration(ice_servers: Iterable[IceServer]) -> RTCConfiguration:
    # An explicit (possibly empty) list: aiortc would otherwise use a public STUN server.
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
            for s in ice_servers
        ]
    )


def validate_offer(offer_sdp: str) -> SessionDescription:
    if len(offer_sdp.encode("utf-8", "replace")) > MAX_OFFER_BYTES:
        raise OfferError("offer too large")
    try:
        description = SessionDescription.parse(offer_sdp)
    except Exception:
        raise OfferError("malformed SDP offer") from None
    video = [m for m in description.media if m.kind == "video"]
    if not video:
        raise OfferError("the offer has no video m-line")
    if not any(c.mimeType.lower() == "video/h264" for m in video for c in m.rtp.codecs):
        raise OfferError("the offer has no H.264 codec (camgate passes camera H.264 through)")
    if not all(m.ice and m.ice.usernameFragment and m.ice.password for m in description.media):
        raise OfferError("the offer has no ICE credentials")
    # aiortc copies a session-level fingerprint into every media section.
    if not all(m.dtls and m.dtls.fingerprints for m in description.media):
        raise OfferError("the offer has no DTLS fingerprint")
    # What aiortc's createAnswer assumes without checking (it raises ValueError else).
    for index, m in enumerate(description.media):
        if m.kind in ("audio", "video") and m.direction is None:
            raise OfferError(f"m-line {index + 1} has no direction (e.g. a=recvonly)")
        if not m.rtp.muxId:
            raise OfferError(f"m-line {index + 1} has no a=mid")
    mids = [m.rtp.muxId for m in description.media]
    if len(set(mids)) != len(mids):
        raise OfferError("the offer repeats an a=mid")
    return description


class WhepSessions:
    """Every open viewer session, by id."""

    def __init__(
        self,
        ice_servers: Iterable[IceServer] = (),
        ptz: Mapping[str, PtzController] | None = None,
        send_workers: SendWorkers | None = None,
        quota: SessionQuota | None = None,
        talk: Mapping[str, CameraTalk] | None = None,
    ) -> None:
        self._talk: Mapping[str, CameraTalk] = talk if talk is not None else {}
        self._ice_servers = tuple(ice_servers)
        self.limits = SessionLimiter(quota)
        self._send_workers = send_workers
        self._sessions: dict[str, WhepSession] = {}
        self._ptz: Mapping[str, PtzController] = ptz if ptz is not None else {}
        self._compat: CompatReport | None = None
        self._compat_lock = asyncio.Lock()

    async def check_libraries(self) -> CompatReport:
        """The library check that picks the send path (gateway/compat/check.py): run
        and logged once, at start-up or before the first viewer."""
        async with self._compat_lock:
            if self._compat is None:
                self._compat = await check_libraries()
                if self._compat.send_path != FAST and self._send_workers is not None:
                    log.warning("webrtc.send_workers is unused on the fallback send path")
            return self._compat

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def send_workers(self) -> Any:
        """The send worker pool app.py handed in (gateway/fanout/pool.py), for /metrics."""
        return self._send_workers

    def __iter__(self) -> Iterator[WhepSession]:
        return iter(list(self._sessions.values()))

    def get(self, session_id: str, camera: str) -> WhepSession | None:
        session = self._sessions.get(session_id)
        if session is None or session.hub.name != camera:
            return None
        return session

    async def open(
        self,
        hub: CameraHub,
        offer_sdp: str,
        *,
        can_steer: bool = True,
        view: View = "full",
        pin: Pin = "auto",
    ) -> tuple[WhepSession, str]:
        """Answer a viewer's offer; returns the session and the SDP answer. `can_steer`:
        the viewer's account may send PTZ commands on the data channel. `view` and `pin`
        choose its first stream (a grid tile starts on the sub stream)."""
        parsed = validate_offer(offer_sdp)
        fast = (await self.check_libraries()).send_path == FAST
        pc = RTCPeerConnection(rtc_configuration(self._ice_servers))
        feed = ViewerFeed(hub, view=view, pin=pin)
        track = PassthroughTrack(feed)
        session = WhepSession(
            id=secrets.token_urlsafe(16),
            hub=hub,
            pc=pc,
            track=track,
            feed=feed,
            can_steer=can_steer,
        )
        feed.on_switch = lambda *_: session.stream_switched()
        pc.on("datachannel", lambda channel: self._on_datachannel(session, channel))
        audio: ViewerAudio | None = None
        attach_talk(session, self._talk.get(hub.name))  # the browser's mic: docs/audio.md
        try:
            transceiver = pc.addTransceiver(track, direction="sendonly")
            # The profile of the stream it starts on (a grid tile's: the sub stream's).
            prefer_camera_profile(transceiver, await _camera_profile(feed.hub))
            if fast:
                session.send_loop = attach_fast_sender(
                    transceiver.sender,
                    track,
                    feed.request_keyframe,  # to the stream the viewer gets now
                    self._send_workers,
                    clock_of(hub),
                )
                # e.g. its send worker died: let it reconnect
                session.send_loop.on_pump_gone = lambda: spawn(
                    self.close(session), f"close-viewer:{session.id[:8]}"
                )
            session.congestion = _watch_path(session, transceiver.sender)
            with _main_for_audio(hub, feed, parsed):
                audio = session.audio = await open_viewer_audio(
                    pc, hub, parsed, fast=fast, workers=self._send_workers
                )
            if audio is not None and audio.send_loop is not None:
                audio.send_loop.on_pump_gone = session.send_loop.on_pump_gone  # type: ignore[union-attr]
            try:
                await pc.setRemoteDescription(
                    RTCSessionDescription(bundle_credentials(offer_sdp), "offer")
                )
            except Exception as exc:
                raise OfferError(_offer_failure(exc)) from None
            decline_other_audio(pc, audio, keep=session.talk_transceiver)
            await _answer(pc)
        except BaseException:
            if audio is not None:
                audio.release()
            feed.close()
            await pc.close()
            raise
        session.remote_ufrag = next(
            (m.ice.usernameFragment for m in parsed.media if m.ice and m.ice.usernameFragment),
            None,
        )
        self._sessions[session.id] = session
        if session.congestion is not None:
            session.congestion.start()
            session.closed_callbacks.append(session.congestion.close)
        session.sync_audio_hold()
        self._watch(session)
        log.info("camera %s: viewer %s joined (%d viewers)", hub.name, session.id[:8], hub.viewers)
        return session, pc.localDescription.sdp

    def hold(self, session: WhepSession, slot: SessionSlot) -> None:
        """Count `session` in `slot` until it ends: pending until connected, then live."""
        if session.closed.is_set():
            slot.release()
            return
        session.closed_callbacks.append(slot.release)

        @session.pc.on("connectionstatechange")
        def _count_connected() -> None:
            if session.pc.connectionState == "connected":
                slot.connected()

    async def trickle(self, session: WhepSession, frag: TrickleFragment) -> None:
        if frag.ice_ufrag and session.remote_ufrag and frag.ice_ufrag != session.remote_ufrag:
            raise SessionConflict("ICE restarts are not supported: open a new session")
        if session.remote_candidates + len(frag.candidates) > MAX_CANDIDATES:
            raise SessionConflict(f"at most {MAX_CANDIDATES} candidates per session")
        session.remote_candidates += len(frag.candidates)
        for mid, candidate_text in frag.candidates:
            try:
                candidate = candidate_from_sdp(candidate_text)
            except Exception:
                raise SessionConflict("malformed candidate") from None
            candidate.sdpMid = mid
            candidate.sdpMLineIndex = 0 if mid is None else None
            await session.pc.addIceCandidate(candidate)
        if frag.end_of_candidates:
            await session.pc.addIceCandidate(None)  # type: ignore[arg-type]

    async def close(self, session: WhepSession) -> None:
        if self._sessions.pop(session.id, None) is None:
            await session.closed.wait()
            return
        session.feed.close()
        session.track.stop()
        if session.audio is not None:
            session.audio.release()
        with contextlib.suppress(Exception):
            await session.pc.close()
        session.closed.set()
        session.sync_audio_hold()  # lets go of it
        for channel in session.ptz_channels:
            channel.release()
        for stream_channel in session.stream_channels:
            stream_channel.close()
        for callback in session.closed_callbacks:
            callback()
        log.info(
            "camera %s: viewer %s left (%d viewers)",
            session.hub.name,
            session.id[:8],
            session.hub.viewers,
        )

    async def close_all(self) -> None:
        await asyncio.gather(*(self.close(s) for s in list(self._sessions.values())))

    def _on_datachannel(self, session: WhepSession, channel: RTCDataChannel) -> None:
        """The viewer opened a data channel: "ptz" carries PTZ commands, "stream" the
        choice of main or sub stream; others are ignored (WHEP players from elsewhere may
        open none at all)."""
        if channel.label == STREAM_LABEL:
            session.stream_channels.append(
                StreamChannel(
                    channel,
                    session.feed,
                    estimate=lambda: session.path_estimate(),
                    on_change=session.sync_audio_hold,
                )
            )
            return
        if channel.label != PTZ_LABEL:
            log.debug("viewer %s: ignoring data channel %r", session.id[:8], channel.label)
            return
        controller = self._ptz.get(session.hub.name)
        session.ptz_channels.append(
            PtzChannel(
                channel,
                controller,
                owner=session.id,
                allowed=session.can_steer,
                authorised=session.still_authorised,
            )
        )

    def _watch(self, session: WhepSession) -> None:
        pc = session.pc

        @pc.on("connectionstatechange")
        def _state_changed() -> None:
            if pc.connectionState in ("failed", "closed"):
                spawn(self.close(session), f"close-viewer:{session.id[:8]}")

        def _connect_deadline() -> None:
            if pc.connectionState != "connected" and session.id in self._sessions:
                log.info("viewer %s never connected; closing", session.id[:8])
                spawn(self.close(session), f"close-viewer:{session.id[:8]}")

        deadline = asyncio.get_running_loop().call_later(CONNECT_TIMEOUT_S, _connect_deadline)
        session.closed_callbacks.append(deadline.cancel)


def _main_for_audio(
    hub: CameraHub, feed: ViewerFeed, offer: SessionDescription
) -> contextlib.AbstractContextManager[None]:
    """The camera's sound comes with its main stream, which a viewer starting on the sub
    stream does not connect: if the main stream was never live (its audio is unknown),
    connect it while the viewer's audio is set up (it lingers as usual afterwards)."""
    if feed.current == "main" or hub.ever_live or not offered_audio(offer):
        return contextlib.nullcontext()
    return hub.hold()


def _watch_path(session: WhepSession, sender: RTCRtpSender) -> CongestionWatch | None:
    """The viewer's congestion watch (docs/streams.md, "On a slow link"); None for a
    camera with one stream (nothing to choose between)."""
    main = session.hub
    sub = main.substream
    if sub is None:
        return None
    watch = CongestionWatch(
        sender,
        session.feed,
        main_kbps=lambda: main.status().bitrate_kbps,
        sub_kbps=lambda: sub.status().bitrate_kbps,
        probe_sender=lambda: session.send_loop.pump if session.send_loop else None,
    )
    session.path_estimate = watch.estimate_json
    return watch


async def _camera_profile(hub: CameraHub) -> str | None:
    """The camera's profile-level-id; on a cold start wait briefly for its first SPS so
    the very first viewer is offered the right profile too."""
    if hub.profile_level_id is None and hub.state in (CameraState.CONNECTING, CameraState.IDLE):
        with contextlib.suppress(TimeoutError):
            await hub.wait_live(PROFILE_WAIT_S)
    return hub.profile_level_id


async def _answer(pc: RTCPeerConnection) -> None:
    """createAnswer + setLocalDescription; aiortc's errors become clear refusals."""
    try:
        await pc.setLocalDescription(await pc.createAnswer())
    except OSError as exc:  # e.g. no file descriptor left for the ICE sockets
        log.warning("cannot answer a viewer: %s", exc.strerror or exc)
        raise SessionLimitExceeded(503, "the gateway is short of resources: retry soon") from None
    except Exception as exc:  # aiortc chokes on what validate_offer let through
        log.warning("cannot answer a viewer's offer: %s: %s", type(exc).__name__, exc)
        raise OfferError("the offer could not be answered (not a usable WebRTC offer)") from None


def _offer_failure(exc: Exception) -> str:
    text = str(exc)
    if "send parameters" in text or "codec" in text.lower():
        return "no H.264 profile in the offer that camgate can send (packetization-mode 1 needed)"
    return "the offer could not be applied"

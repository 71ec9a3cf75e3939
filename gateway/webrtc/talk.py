"""Talk back on a viewer's peer connection: the browser's microphone arrives on the
audio m-line (the offer's must be sendrecv), and a "talk" data channel asks for the floor.

                           <- {"talk": "ready", "codec": "PCMU"} once the channel opens
                              (or "not allowed", "unsupported", "error": no button then)
    -> {"talk": "start"}   <- {"talk": "granted", "codec": "PCMU"} | {"talk": "busy", ...}
    -> {"talk": "stop"}    <- {"talk": "ended"}
                           <- {"talk": "ended", "message": "..."} (max talk time, camera gone)

Replies: granted, busy, not allowed (a viewer-role account), unsupported (no backchannel,
or `backchannel: off`), ended, error (with a message). Audio that arrives while the
session does not hold the floor is decoded by aiortc and dropped here.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from gateway.talkback.backchannel import TalkError
from gateway.talkback.camera import Answer, CameraTalk, Reply
from gateway.tasks import spawn

if TYPE_CHECKING:
    from gateway.webrtc.session import WhepSession

log = logging.getLogger("camgate.talk")

LABEL = "talk"
MAX_MESSAGE_BYTES = 256
REVOKED = "access revoked: sign in again"
READY = "ready"


def attach_talk(session: WhepSession, talk: CameraTalk | None) -> None:
    """Before the offer is applied: let an admin's session on a camera that may talk
    receive the browser's audio and serve its "talk" data channel; for everyone else the
    browser's audio is not asked for."""
    allowed = talk is not None and talk.enabled and session.can_steer
    pc = session.pc
    voices: list[MediaStreamTrack] = []  # one microphone per session: the first audio m-line

    def on_track(track: MediaStreamTrack) -> None:
        if track.kind != "audio":
            return
        transceiver = next((t for t in pc.getTransceivers() if t.receiver.track is track), None)
        if transceiver is None:
            return
        if not allowed or voices:
            if transceiver.direction == "recvonly":  # aiortc's own: nobody listens
                transceiver.direction = "inactive"
            return
        # Keep sending the camera's sound if the transceiver does, and receive too.
        sending = transceiver.direction in ("sendonly", "sendrecv")
        transceiver.direction = "sendrecv" if sending else "recvonly"
        assert talk is not None
        voices.append(track)
        session.talk_transceiver = transceiver
        spawn(_read_voice(session, talk, track), f"talk-read:{session.id[:8]}")

    pc.on("track", on_track)
    pc.on("datachannel", lambda channel: _on_datachannel(session, talk, channel))
    if talk is not None:
        session.closed_callbacks.append(lambda: talk.stop(session.id))


async def _read_voice(session: WhepSession, talk: CameraTalk, track: MediaStreamTrack) -> None:
    """Every frame of the browser's audio; only the floor holder's reaches the camera."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return  # the session ended
        try:
            await talk.feed(session.id, frame)  # type: ignore[arg-type]
        except Exception as exc:  # a frame PyAV refuses must not end the talk
            log.warning("camera %s: voice frame dropped: %s", talk.name, exc)


def _on_datachannel(session: WhepSession, talk: CameraTalk | None, channel: RTCDataChannel) -> None:
    if channel.label != LABEL:
        return

    def reply(state: str, message: str | None = None, **extra: Any) -> None:
        if channel.readyState != "open":
            return
        body: dict[str, Any] = {"talk": state, **extra}
        if message:
            body["message"] = message
        try:
            channel.send(json.dumps(body))
        except Exception as exc:  # closed between the check and the send
            log.debug("talk reply not sent: %s", exc)

    def ended(reason: str) -> None:
        reply(Reply.ENDED, reason)

    async def start() -> None:
        assert talk is not None
        answer: Answer = await talk.start(session.id, ended)
        extra = {"codec": answer.message} if answer.reply is Reply.GRANTED else {}
        message = None if answer.reply is Reply.GRANTED else answer.message
        reply(answer.reply, message, **extra)

    def on_message(message: str | bytes) -> None:
        command = _parse(message)
        if command is None:
            reply(Reply.ERROR, 'send {"talk": "start"} or {"talk": "stop"} as JSON text')
            return
        if command == "stop":
            if talk is not None:
                talk.stop(session.id)
            reply(Reply.ENDED)
            return
        if not session.still_authorised():
            reply(Reply.NOT_ALLOWED, REVOKED)
            return
        if not session.can_steer:
            reply(Reply.NOT_ALLOWED, "this account may watch but not talk")
        elif talk is None or not talk.enabled:
            reply(Reply.UNSUPPORTED, talk.unsupported if talk else "this camera cannot talk")
        elif not _receives_audio(session.pc):
            reply(Reply.ERROR, "the offer's audio m-line must be sendrecv to talk")
        else:
            spawn(start(), f"talk-start:{session.id[:8]}")

    async def announce() -> None:
        # Whether this camera can talk is learnt when first needed (one DESCRIBE with
        # the Require header, cached): now, for the viewer's button.
        if not session.can_steer:
            reply(Reply.NOT_ALLOWED, "this account may watch but not talk")
            return
        if talk is None or not talk.enabled:
            reply(Reply.UNSUPPORTED, talk.unsupported if talk else "this camera cannot talk")
            return
        try:
            await talk.probe()
        except TalkError as exc:
            reply(Reply.ERROR, str(exc))
            return
        if talk.available:
            reply(READY, codec=talk.codec)
        else:
            reply(Reply.UNSUPPORTED, talk.unsupported)

    channel.on("message", on_message)
    spawn(announce(), f"talk-hello:{session.id[:8]}")
    if talk is not None:
        channel.on("close", lambda: talk.stop(session.id))


def _parse(message: str | bytes) -> str | None:
    if not isinstance(message, str) or len(message) > MAX_MESSAGE_BYTES:
        return None
    try:
        data = json.loads(message)
    except ValueError:
        return None
    value = data.get("talk") if isinstance(data, dict) else None
    return value if value in ("start", "stop") else None


def _receives_audio(pc: RTCPeerConnection) -> bool:
    return any(
        t.kind == "audio" and t.direction in ("recvonly", "sendrecv") for t in pc.getTransceivers()
    )

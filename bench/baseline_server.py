"""The baseline: aiortc's own pre-encoded path behind a minimal WHEP server.

`MediaPlayer(rtsp, decode=False)` + `MediaRelay`, the way aiortc's examples relay a
camera. Same URL scheme as camgate, so the same receivers and browser page drive both:

    POST   /api/cameras/{camera}/whep            application/sdp -> 201 + Location + answer
    DELETE /api/cameras/{camera}/whep/{session}  -> 200
    GET    /api/cameras/{camera}                 {"state": "live"|"connecting", "frames": N}

    python -m bench.baseline_server --source rtsp://127.0.0.1:8554/cam --listen 127.0.0.1:8081
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer, MediaRelay
from aiortc.mediastreams import MediaStreamError

from bench.whep_client import use_loopback_candidates

log = logging.getLogger("bench.baseline")

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Expose-Headers": "Location",
}
H264_AND_RTX = ("video/H264", "video/rtx")


class BaselineCamera:
    """One RTSP camera relayed to every viewer, plus a drain subscriber that keeps the
    player running with no viewers (the equivalent of camgate's `preload: true`)."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.player = MediaPlayer(source, decode=False, options={"rtsp_transport": "tcp"})
        if self.player.video is None:
            raise SystemExit(f"baseline: no video track in {source}")
        self.video = self.player.video
        self.relay = MediaRelay()
        self.sessions: dict[str, RTCPeerConnection] = {}
        self.frames = 0
        self._drain: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._drain = asyncio.get_running_loop().create_task(self._drain_frames())

    async def _drain_frames(self) -> None:
        track = self.relay.subscribe(self.video)
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.frames += 1

    async def open(self, offer_sdp: str) -> tuple[str, str]:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        session_id = secrets.token_urlsafe(12)
        self.sessions[session_id] = pc

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close_session(session_id)

        sender = pc.addTrack(self.relay.subscribe(self.video))
        force_h264(pc, sender)
        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return session_id, pc.localDescription.sdp

    async def close_session(self, session_id: str) -> bool:
        pc = self.sessions.pop(session_id, None)
        if pc is None:
            return False
        await pc.close()
        return True

    async def close(self) -> None:
        await asyncio.gather(*(self.close_session(s) for s in list(self.sessions)))
        if self._drain is not None:
            self._drain.cancel()
        self.video.stop()


PLAYER: web.AppKey[BaselineCamera] = web.AppKey("player")


def force_h264(pc: RTCPeerConnection, sender: RTCRtpSender) -> None:
    """H.264 only, as aiortc's webcam example does (`force_codec`): pre-encoded packets
    go out as whatever codec was negotiated, so VP8 would carry H.264 bytes."""
    codecs = RTCRtpSender.getCapabilities("video").codecs
    transceiver = next(t for t in pc.getTransceivers() if t.sender == sender)
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType in H264_AND_RTX])


def _camera(request: web.Request) -> BaselineCamera:
    camera = request.app[PLAYER]
    if request.match_info["camera"] != camera.name:
        raise web.HTTPNotFound(headers=CORS)
    return camera


async def offer(request: web.Request) -> web.Response:
    camera = _camera(request)
    if request.content_type != "application/sdp":
        raise web.HTTPUnsupportedMediaType(headers=CORS)
    session_id, answer = await camera.open(await request.text())
    location = f"/api/cameras/{camera.name}/whep/{session_id}"
    return web.Response(
        status=201,
        text=answer,
        content_type="application/sdp",
        headers={"Location": location, **CORS},
    )


async def delete(request: web.Request) -> web.Response:
    camera = _camera(request)
    if not await camera.close_session(request.match_info["session"]):
        raise web.HTTPNotFound(headers=CORS)
    return web.Response(status=200, headers=CORS)


async def preflight(_request: web.Request) -> web.Response:
    return web.Response(status=204, headers=CORS)


async def status(request: web.Request) -> web.Response:
    camera = _camera(request)
    state = "live" if camera.frames else "connecting"
    return web.json_response(
        {"state": state, "frames": camera.frames, "viewers": len(camera.sessions)}
    )


def make_app(camera: BaselineCamera) -> web.Application:
    app = web.Application()
    app[PLAYER] = camera

    async def on_startup(_app: web.Application) -> None:
        camera.start()

    async def on_shutdown(_app: web.Application) -> None:
        await camera.close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.router.add_post("/api/cameras/{camera}/whep", offer)
    app.router.add_route("OPTIONS", "/api/cameras/{camera}/whep", preflight)
    app.router.add_delete("/api/cameras/{camera}/whep/{session}", delete)
    app.router.add_route("OPTIONS", "/api/cameras/{camera}/whep/{session}", preflight)
    app.router.add_get("/api/cameras/{camera}", status)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="aiortc MediaPlayer+MediaRelay WHEP baseline")
    parser.add_argument("--source", required=True, help="rtsp:// URL")
    parser.add_argument("--listen", default="127.0.0.1:8081", metavar="HOST:PORT")
    parser.add_argument("--camera", default="bench", help="camera name in the URLs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    use_loopback_candidates()
    host, _, port = args.listen.rpartition(":")
    camera = BaselineCamera(args.camera, args.source)
    web.run_app(make_app(camera), host=host, port=int(port), access_log=None, print=None)


if __name__ == "__main__":
    main()

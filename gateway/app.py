"""Wire configuration, cameras, WebRTC and HTTP together; run until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from gateway.config import CameraConfig, Config
from gateway.http.server import make_app
from gateway.hub import CameraHub
from gateway.rtsp.url import redact
from gateway.sources.base import Source
from gateway.sources.demo import DemoSource
from gateway.webrtc.codecs import register_h264_profiles
from gateway.webrtc.ice_filter import install_candidate_filter
from gateway.webrtc.session import WhepSessions

log = logging.getLogger("camgate")


def source_factory(camera: CameraConfig) -> Callable[[], Source]:
    if camera.is_demo:
        return lambda: DemoSource(camera.demo)
    from gateway.sources.rtsp import RtspSource

    return lambda: RtspSource(camera.source, transport=camera.transport)


@dataclass
class Gateway:
    """A running camgate: its cameras, viewer sessions and HTTP server."""

    config: Config
    hubs: dict[str, CameraHub]
    sessions: WhepSessions
    runner: web.AppRunner | None = None

    @classmethod
    def from_config(cls, config: Config) -> Gateway:
        install_candidate_filter(config.webrtc.candidates)
        register_h264_profiles()
        hubs = {
            cam.name: CameraHub(
                cam.name,
                source_factory(cam),
                preload=cam.preload,
                linger_s=cam.linger_s,
                description="demo" if cam.is_demo else redact(cam.source),
            )
            for cam in config.cameras
        }
        return cls(config=config, hubs=hubs, sessions=WhepSessions(config.webrtc.ice_servers))

    def make_app(self, web_root: Path | None = None) -> web.Application:
        return make_app(self.hubs, self.sessions, web_root)

    async def start(self, web_root: Path | None = None) -> list[tuple[str, int]]:
        """Start cameras and the HTTP server; returns the bound (host, port) pairs."""
        for hub in self.hubs.values():
            await hub.boot()
        self.runner = web.AppRunner(self.make_app(web_root), access_log=None, handle_signals=False)
        await self.runner.setup()
        host, port = self.config.listen
        site = web.TCPSite(self.runner, host, port, reuse_address=True)
        await site.start()
        return [s.getsockname()[:2] for s in site._server.sockets]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Close every viewer, tear down every camera session, stop HTTP."""
        await self.sessions.close_all()
        await asyncio.gather(*(hub.close() for hub in self.hubs.values()))
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


async def serve(config: Config) -> int:
    gateway = Gateway.from_config(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        addresses = await gateway.start()
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", *config.listen, exc.strerror or exc)
        await gateway.stop()
        return 1
    for host, port in addresses:
        shown = f"[{host}]" if ":" in host else host
        log.info("camgate serving http://%s:%d/ (%d cameras)", shown, port, len(gateway.hubs))
    await stop.wait()
    log.info("shutting down")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(gateway.stop(), 10.0)
    log.info("stopped")
    return 0

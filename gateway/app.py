"""Wire configuration, cameras, WebRTC and HTTP together; run until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from gateway import __version__
from gateway.audio.transcode import aac_to_opus
from gateway.auth.revocation import watch_revocations
from gateway.auth.service import Authenticator
from gateway.auth.store import AuthFileError
from gateway.config import CameraConfig, Config
from gateway.fanout.pool import SendWorkerPool
from gateway.http.connections import (
    TLS_HANDSHAKE_TIMEOUT_S,
    ConnectionGuard,
    busy_tracker,
    protocol_factory,
)
from gateway.http.hsts import send_hsts
from gateway.http.keys import MQTT_STATE, PTZ_BACKENDS, PTZ_CONTROLLERS
from gateway.http.server import make_app
from gateway.hub import CameraHub
from gateway.logrepeat import quiet_resource_errors
from gateway.media.limits import StreamLimits
from gateway.ptz.backend import PtzBackend, PtzError
from gateway.ptz.controller import DEFAULT_COMMAND_TIMEOUT_S, PtzController
from gateway.snapshot import Snapshotter
from gateway.sources.base import Source
from gateway.sources.registry import SourceSetup, kind_named
from gateway.talkback.camera import CameraTalk
from gateway.talkback.setup import camera_talk
from gateway.tls import TlsError, server_context
from gateway.webrtc.codecs import register_h264_profiles
from gateway.webrtc.ice_filter import install_candidate_filter
from gateway.webrtc.session import WhepSessions

if TYPE_CHECKING:
    from gateway.mqtt.bridge import MqttBridge
    from gateway.onvif.session import OnvifSession

log = logging.getLogger("camgate")


def source_factory(
    camera: CameraConfig,
    onvif: OnvifSession | None = None,
    on_resolved: Callable[[str], None] | None = None,
    limits: StreamLimits | None = None,
) -> Callable[[], Source]:
    """Builds the camera's Source, afresh for each connection, as its kind says."""
    kind = kind_named(camera.kind)
    setup = SourceSetup(camera, limits=limits, onvif=onvif, on_resolved=on_resolved)
    return lambda: kind.build(setup)


def substream_factory(
    camera: CameraConfig,
    onvif: OnvifSession | None = None,
    on_resolved: Callable[[str], None] | None = None,
    limits: StreamLimits | None = None,
) -> tuple[Callable[[], Source], str] | None:
    """Builds the camera's second stream's Source (afresh for each connection) and says
    what it is before it connects; None when the camera has none by config. Building a
    Source touches nothing (it connects in run()): the first one is built here, to learn
    whether there is one, and serves the first connection."""
    kind = kind_named(camera.kind)
    build = kind.build_substream
    if build is None:
        return None
    setup = SourceSetup(camera, limits=limits, onvif=onvif, on_resolved=on_resolved)
    first = build(setup)
    if first is None:
        return None
    built: list[Source] = [first]

    def build_source() -> Source:
        source = built.pop() if built else build(setup)
        assert source is not None
        return source

    return build_source, first.description


def camera_description(camera: CameraConfig) -> str:
    """What the API shows as a camera's source before it connects: never a credential."""
    return kind_named(camera.kind).describe(camera)


@dataclass
class Gateway:
    """A running camgate: its cameras, viewer sessions and HTTP server."""

    config: Config
    hubs: dict[str, CameraHub]
    sessions: WhepSessions
    runner: web.AppRunner | None = None
    _listener: asyncio.Server | None = field(default=None, init=False, repr=False)
    # One ONVIF connection per camera with an `onvif:` block, shared by its stream and PTZ.
    onvif_sessions: dict[str, OnvifSession] = field(default_factory=dict)
    # PTZ for cameras with an `onvif:` block (capabilities may say "no PTZ"); others: none.
    ptz_backends: dict[str, PtzBackend] = field(default_factory=dict)
    # One per backend: serialises, coalesces and ends every move (docs/ptz.md).
    ptz_controllers: dict[str, PtzController] = field(default_factory=dict)
    # JPEG snapshots per camera, shared by HTTP and MQTT.
    snapshotters: dict[str, Snapshotter] = field(default_factory=dict)
    mqtt: MqttBridge | None = None
    auth: Authenticator | None = None
    send_workers: SendWorkerPool | None = None  # webrtc.send_workers > 0
    # Caps and timeouts of HTTP connections (gateway/http/connections.py).
    connections: ConnectionGuard = field(default_factory=ConnectionGuard)
    # Talk back per camera (docs/audio.md): its backchannel, floor and RTSP session.
    talks: dict[str, CameraTalk] = field(default_factory=dict)
    _ptz_loads: list[asyncio.Task[None]] = field(default_factory=list, init=False, repr=False)
    _revocations: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_config(cls, config: Config) -> Gateway:
        install_candidate_filter(config.webrtc.candidates)
        register_h264_profiles()
        onvif_sessions, ptz_backends = _onvif_parts(config)
        hubs: dict[str, CameraHub] = {}
        for cam in config.cameras:

            def show(text: str, name: str = cam.name) -> None:
                hubs[name].description = text  # the resolved RTSP URL, redacted

            hubs[cam.name] = CameraHub(
                cam.name,
                source_factory(cam, onvif_sessions.get(cam.name), show, config.limits),
                preload=cam.preload,
                linger_s=cam.linger_s,
                description=camera_description(cam),
                limits=config.limits,
                audio=cam.audio != "off",
                audio_transcoder=aac_to_opus(cam.name),  # PyAV loads when first used
            )
            sub = _substream_hub(cam, onvif_sessions.get(cam.name), config.limits)
            if sub is not None:
                hubs[cam.name].attach_substream(sub)
        ptz_controllers = _ptz_controllers(config, ptz_backends)
        talks = {cam.name: camera_talk(cam, onvif_sessions.get(cam.name)) for cam in config.cameras}
        for name, talk in talks.items():
            hubs[name].talk = talk
        snapshotters = {name: Snapshotter(hub) for name, hub in hubs.items()}
        workers = SendWorkerPool(config.webrtc.send_workers) if config.webrtc.send_workers else None
        return cls(
            config=config,
            hubs=hubs,
            sessions=WhepSessions(
                config.webrtc.ice_servers,
                ptz=ptz_controllers,
                send_workers=workers,
                quota=config.client_limits.sessions,
                talk=talks,
            ),
            talks=talks,
            connections=ConnectionGuard(config.client_limits.http),
            send_workers=workers,
            onvif_sessions=onvif_sessions,
            ptz_backends=ptz_backends,
            ptz_controllers=ptz_controllers,
            snapshotters=snapshotters,
            auth=Authenticator(config.auth, config.state_dir),
            mqtt=_mqtt_bridge(config, hubs, snapshotters, ptz_backends, ptz_controllers),
        )

    def make_app(self, web_root: Path | None = None) -> web.Application:
        app = make_app(self.hubs, self.sessions, web_root, self.snapshotters, self.auth)
        app.middlewares.append(busy_tracker(self.connections))
        app[PTZ_BACKENDS] = self.ptz_backends
        app[PTZ_CONTROLLERS] = self.ptz_controllers
        if self.mqtt is not None:
            app[MQTT_STATE] = self.mqtt.connected.is_set
        if self.config.tls is not None:
            send_hsts(app)
        return app

    async def start(self, web_root: Path | None = None) -> list[tuple[str, int]]:
        """Start cameras and the HTTP server; returns the bound (host, port) pairs."""
        await self.sessions.check_libraries()  # logs which send path viewers get
        if self.send_workers is not None:
            await self.send_workers.start()
        for hub in self.hubs.values():
            await hub.boot()
        for name, backend in self.ptz_backends.items():
            # Learn each camera's PTZ in the background: a camera that is down must not
            # hold up the gateway (commands retry the discovery themselves).
            self._ptz_loads.append(asyncio.create_task(_load_ptz(name, backend)))
        self.runner = web.AppRunner(self.make_app(web_root), access_log=None, handle_signals=False)
        await self.runner.setup()
        host, port = self.config.listen
        ssl_context = (
            server_context(self.config.tls, self.config.state_dir) if self.config.tls else None
        )
        # Not a web.TCPSite: its connections could not be capped or timed (see
        # gateway/http/connections.py). runner.cleanup() still closes them at the end.
        assert self.runner.server is not None
        self._listener = await asyncio.get_running_loop().create_server(
            protocol_factory(self.runner.server, self.connections),
            host,
            port,
            ssl=ssl_context,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S if ssl_context else None,
            reuse_address=True,
        )
        if self.mqtt is not None:
            self.mqtt.start()  # connects in the background: a missing broker stops nothing
        if self.auth is not None and self.auth.enabled:
            self._revocations = asyncio.create_task(watch_revocations(self.auth, self.sessions))
        return [s.getsockname()[:2] for s in self._listener.sockets]

    async def stop(self) -> None:
        """Close every viewer, tear down every camera session, stop HTTP."""
        if self.mqtt is not None:
            await self.mqtt.close()
        if self._revocations is not None:
            self._revocations.cancel()
            await asyncio.gather(self._revocations, return_exceptions=True)
            self._revocations = None
        await self.sessions.close_all()
        if self.send_workers is not None:
            await self.send_workers.close()
        for task in self._ptz_loads:
            task.cancel()
        await asyncio.gather(*self._ptz_loads, return_exceptions=True)
        self._ptz_loads.clear()
        # Viewers are gone (their moves were released): stop what still moves.
        await asyncio.gather(*(c.close() for c in self.ptz_controllers.values()))
        await asyncio.gather(*(t.close() for t in self.talks.values()))
        await asyncio.gather(*(hub.close() for hub in self.hubs.values()))
        await asyncio.gather(*(h.substream.close() for h in self.hubs.values() if h.substream))
        await asyncio.gather(*(s.close() for s in self.onvif_sessions.values()))
        if self._listener is not None:
            self._listener.close()  # no new connections; cleanup() closes the open ones
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None


def _substream_hub(
    cam: CameraConfig, onvif: OnvifSession | None, limits: StreamLimits
) -> CameraHub | None:
    """The hub of the camera's second stream: connected only while a viewer watches it
    (never preloaded), without audio (the camera's sound stays on the main stream)."""
    name = f"{cam.name}~sub"
    hub: CameraHub | None = None

    def show(text: str) -> None:
        if hub is not None:
            hub.description = text

    found = substream_factory(cam, onvif, show, limits)
    if found is None:
        return None
    factory, description = found
    hub = CameraHub(
        name,
        factory,
        linger_s=cam.linger_s,
        description=description,
        limits=limits,
        audio=False,
    )
    return hub


def _onvif_parts(config: Config) -> tuple[dict[str, OnvifSession], dict[str, PtzBackend]]:
    """An OnvifSession and an OnvifPtz for every camera with an `onvif:` block."""
    endpoints = {cam.name: cam.onvif_settings for cam in config.cameras if cam.onvif_settings}
    if not endpoints:
        return {}, {}
    from gateway.onvif.ptz import OnvifPtz
    from gateway.onvif.session import OnvifSession

    sessions = {name: OnvifSession(onvif, name) for name, onvif in endpoints.items()}
    return sessions, {name: OnvifPtz(session) for name, session in sessions.items()}


def camera_model(camera: CameraConfig) -> str:
    """What kind of camera it is, in words (Home Assistant's device model)."""
    kind = kind_named(camera.kind)
    carried = [model for block, model in kind.model_with.items() if getattr(camera, block, None)]
    return carried[0] if carried else kind.model


def _mqtt_bridge(
    config: Config,
    hubs: dict[str, CameraHub],
    snapshotters: dict[str, Snapshotter],
    backends: dict[str, PtzBackend],
    controllers: dict[str, PtzController],
) -> MqttBridge | None:
    if config.mqtt is None:
        return None
    from gateway.mqtt.bridge import MqttBridge, MqttCamera

    cameras = {
        cam.name: MqttCamera(
            hub=hubs[cam.name],
            snapshotter=snapshotters[cam.name],
            model=camera_model(cam),
            controller=controllers.get(cam.name),
            backend=backends.get(cam.name),
        )
        for cam in config.cameras
    }
    return MqttBridge(config.mqtt, cameras, version=__version__)


def _ptz_controllers(config: Config, backends: dict[str, PtzBackend]) -> dict[str, PtzController]:
    """A PtzController for every camera with a PTZ backend."""
    controllers = {}
    for cam in config.cameras:
        backend = backends.get(cam.name)
        if backend is None:
            continue
        # The backend may need a few bounded requests (reconnect, re-read the PTZ node)
        # before the command itself: the controller's backstop allows for them.
        request_s = cam.onvif_settings.timeout_s if cam.onvif_settings is not None else 0.0
        timeout = max(DEFAULT_COMMAND_TIMEOUT_S, 4 * request_s)
        controllers[cam.name] = PtzController(
            backend,
            cam.name,
            deadman_s=config.ptz.deadman_s,
            max_move_s=config.ptz.max_move_s,
            command_timeout_s=timeout,
        )
    return controllers


async def _load_ptz(name: str, backend: PtzBackend) -> None:
    load = getattr(backend, "load", None)
    if load is None:
        return
    try:
        await load()
    except PtzError as exc:
        log.warning("camera %s: PTZ not available yet: %s", name, exc)


def _announce_setup(code: str, scheme: str, addresses: list[tuple[str, int]]) -> None:
    """No admin password yet: say where to choose it and the code it takes, loudly (this
    is what `scripts/run` and the journal show; `camgate setup-code` shows it again)."""
    host, port = addresses[0] if addresses else ("localhost", 8080)
    if host in ("0.0.0.0", "::"):
        host = "localhost"
    shown = f"[{host}]" if ":" in host else host
    log.warning(
        "no admin password yet: open %s://%s:%d/ (or this machine's address) and choose it "
        "with the setup code   %s",
        scheme,
        shown,
        port,
        code,
    )


async def serve(config: Config) -> int:
    try:
        gateway = Gateway.from_config(config)
    except AuthFileError as exc:
        log.error("%s (fix or remove the file; `camgate password` sets a new one)", exc)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    quiet_resource_errors(loop)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        addresses = await gateway.start()
    except (TlsError, FileNotFoundError) as exc:  # a bad certificate, no viewer files
        log.error("%s", exc)
        await gateway.stop()
        return 1
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", *config.listen, exc.strerror or exc)
        await gateway.stop()
        return 1
    # Everything loaded so far lives as long as the process: out of the collector's sight,
    # its full collections no longer walk it (16 viewers: 3.4 -> 1.4 ms of GC a second).
    gc.collect()
    gc.freeze()
    scheme = "https" if config.tls else "http"
    for host, port in addresses:
        shown = f"[{host}]" if ":" in host else host
        log.info("camgate serving %s://%s:%d/ (%d cameras)", scheme, shown, port, len(gateway.hubs))
    if gateway.auth is not None and gateway.auth.needs_setup:
        _announce_setup(gateway.auth.setup_code or "", scheme, addresses)
    elif gateway.auth is not None and not gateway.auth.enabled:
        log.warning("auth is off: anyone who reaches this port can watch and steer the cameras")
    await stop.wait()
    log.info("shutting down")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(gateway.stop(), 10.0)
    log.info("stopped")
    return 0

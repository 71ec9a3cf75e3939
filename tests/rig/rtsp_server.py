#!/usr/bin/python3
"""A scriptable RTSP camera for the tests: GStreamer's RTSP server on 127.0.0.1.

Runs under Debian's /usr/bin/python3 (it needs python3-gi and gir1.2-gst-rtsp-server-1.0),
never in the project venv; tests start it through tests/rig/rtsp.py.

Protocol: one JSON object per stdout line.
    {"event": "ready", "port": N}                 once listening
    {"event": "client-connected"}                 an RTSP connection was accepted
    {"event": "client-closed"}                    an RTSP connection ended
    {"event": "session", "count": N}              a new RTSP session (N = sessions in the pool)
    {"event": "status", "sessions": N, "clients": M}   answer to the stdin line "status"
    {"event": "error", "message": "..."}          bad launch string, cannot listen, bad command
It exits cleanly on SIGTERM, SIGINT or end of stdin.

    rtsp_server.py --port 0 --mount '/cam=( videotestsrc is-live=true ! x264enc ! \
        rtph264pay name=pay0 pt=96 )' [--no-shared] [--user U --password P] \
        [--auth-method digest|basic] [--session-timeout S] [--keep-encoding] \
        [--udp-ports MIN-MAX]

--keep-encoding: behave like a real camera, whose encoder runs on whoever connects: PLAY's
    Range header is dropped (GStreamer would seek a shared media, restarting the encoder)
    and so are the force-key-unit requests GStreamer sends upstream for a joining client.
    With a second client kept connected, a client that reconnects lands mid-GOP.
--udp-ports: the server's RTP/RTCP ports for UDP clients come from this range (so a test
    can single out the camera's packets, e.g. for tc netem).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

ROLE = "camera-user"
# Like most cameras. It only matters for RTP over UDP: GStreamer never expires a session
# whose RTSP-over-TCP connection is open, and we drop sessions when it closes.
DEFAULT_SESSION_TIMEOUT_S = 60
CLEANUP_INTERVAL_MS = 250


_emit_lock = threading.Lock()


def emit(event: str, **fields: Any) -> None:
    # Called from GLib's main loop and from RTSP client threads: one line at a time.
    line = json.dumps({"event": event, **fields})
    with _emit_lock:
        print(line, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--mount", action="append", default=[], metavar="PATH=LAUNCH")
    parser.add_argument("--shared", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--auth-method", choices=("digest", "basic"), default="digest")
    parser.add_argument("--session-timeout", type=int, default=DEFAULT_SESSION_TIMEOUT_S)
    parser.add_argument("--keep-encoding", action="store_true")
    parser.add_argument("--udp-ports", metavar="MIN-MAX")
    args = parser.parse_args(argv)
    if not args.mount:
        parser.error("at least one --mount PATH=LAUNCH is needed")
    if (args.user is None) != (args.password is None):
        parser.error("--user and --password go together")
    return args


def make_auth(user: str, password: str, method: str) -> GstRtspServer.RTSPAuth:
    """One user, who may access and construct every mount, by Basic or Digest auth.

    One method at a time: PyGObject cannot pass BASIC|DIGEST (not a valid enum value)."""
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", ROLE)
    if method == "basic":
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
    else:
        auth.add_digest(user, password, token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    return auth


def make_permissions() -> GstRtspServer.RTSPPermissions:
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_permission_for_role(ROLE, "media.factory.access", True)
    permissions.add_permission_for_role(ROLE, "media.factory.construct", True)
    return permissions


def check_launch(launch: str) -> None:
    """Fail at start-up on a bad launch string, not with a 503 at the first DESCRIBE."""
    try:
        Gst.parse_launch(launch)
    except GLib.Error as exc:
        emit("error", message=f"bad launch string: {exc.message}: {launch}")
        raise SystemExit(1) from exc


def drop_force_key_unit(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
    event = info.get_event()
    structure = event.get_structure() if event is not None else None
    if structure is not None and structure.get_name() == "GstForceKeyUnit":
        return Gst.PadProbeReturn.DROP
    return Gst.PadProbeReturn.OK


def answer_not_seekable(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
    # A seekable media is seeked (flushed, the encoder restarted) when a client plays it.
    # Answered unchanged, a SEEKING query says "not seekable".
    query = info.get_query()
    if query is not None and query.type == Gst.QueryType.SEEKING:
        return Gst.PadProbeReturn.HANDLED
    return Gst.PadProbeReturn.OK


class CameraServer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.loop = GLib.MainLoop()
        self.server = self.new_server()
        self.server.set_address("127.0.0.1")
        self.server.set_service(str(args.port))
        self.pool = self.server.get_session_pool()
        self.clients = 0
        self.sessions_of: dict[GstRtspServer.RTSPClient, list[GstRtspServer.RTSPSession]] = {}
        self.stdin_buffer = b""
        if args.user is not None:
            self.server.set_auth(make_auth(args.user, args.password, args.auth_method))
        mounts = self.server.get_mount_points()
        for spec in args.mount:
            path, sep, launch = spec.partition("=")
            if not sep or not path.startswith("/"):
                raise SystemExit(f"bad --mount {spec!r}: expected /PATH=LAUNCH")
            mounts.add_factory(path, self.make_factory(launch))
        self.server.connect("client-connected", self.on_client_connected)

    def new_server(self) -> GstRtspServer.RTSPServer:
        return GstRtspServer.RTSPServer()  # a subclass may serve another kind

    def new_factory(self) -> GstRtspServer.RTSPMediaFactory:
        return GstRtspServer.RTSPMediaFactory()

    def make_factory(self, launch: str) -> GstRtspServer.RTSPMediaFactory:
        check_launch(launch)
        factory = self.new_factory()
        factory.set_launch(launch)
        factory.set_shared(self.args.shared)
        if self.args.user is not None:
            factory.set_permissions(make_permissions())
        if self.args.keep_encoding:
            factory.connect("media-configure", self.on_media_configure)
        if self.args.udp_ports:
            low, _, high = self.args.udp_ports.partition("-")
            pool = GstRtspServer.RTSPAddressPool()
            pool.add_range("127.0.0.1", "127.0.0.1", int(low), int(high), 0)
            factory.set_address_pool(pool)
        return factory

    def on_client_connected(
        self, _server: GstRtspServer.RTSPServer, client: GstRtspServer.RTSPClient
    ) -> None:
        self.clients += 1
        emit("client-connected")
        client.connect("closed", self.on_client_closed)
        client.connect("new-session", self.on_new_session)
        if self.args.keep_encoding:
            client.connect("pre-play-request", self.on_pre_play)

    @staticmethod
    def on_media_configure(
        _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia
    ) -> None:
        payloader = media.get_element().get_by_name("pay0")
        if payloader is not None:
            pad = payloader.get_static_pad("sink")
            pad.add_probe(Gst.PadProbeType.EVENT_UPSTREAM, drop_force_key_unit)
            pad.add_probe(Gst.PadProbeType.QUERY_UPSTREAM, answer_not_seekable)

    @staticmethod
    def on_pre_play(
        _client: GstRtspServer.RTSPClient, context: GstRtspServer.RTSPContext
    ) -> GstRtsp.RTSPStatusCode:
        context.request.remove_header(GstRtsp.RTSPHeaderField.RANGE, -1)
        return GstRtsp.RTSPStatusCode.OK

    def on_client_closed(self, client: GstRtspServer.RTSPClient) -> None:
        self.clients -= 1
        # A closed RTSP-over-TCP connection ends its sessions, but GStreamer keeps them in
        # the pool until they time out (timeout + 5 s): status() would lag behind.
        for session in self.sessions_of.pop(client, []):
            self.pool.remove(session)
        emit("client-closed")

    def on_new_session(
        self, client: GstRtspServer.RTSPClient, session: GstRtspServer.RTSPSession
    ) -> None:
        session.set_timeout(self.args.session_timeout)
        self.sessions_of.setdefault(client, []).append(session)
        emit("session", count=self.pool.get_n_sessions())

    def on_stdin(self, fd: int, condition: GLib.IOCondition) -> bool:
        data = os.read(fd, 4096) if condition & GLib.IO_IN else b""
        if not data:
            self.loop.quit()  # stdin closed: our parent is gone
            return False
        self.stdin_buffer += data
        *lines, self.stdin_buffer = self.stdin_buffer.split(b"\n")
        for line in lines:
            command = line.decode(errors="replace").strip()
            if command == "status":
                self.pool.cleanup()
                emit("status", sessions=self.pool.get_n_sessions(), clients=self.clients)
            elif command:
                emit("error", message=f"unknown command {command!r}")
        return True

    def on_cleanup_tick(self) -> bool:
        self.pool.cleanup()
        return True

    def run(self) -> None:
        if self.server.attach(None) == 0:
            emit("error", message=f"cannot listen on 127.0.0.1:{self.args.port}")
            raise SystemExit(1)
        GLib.io_add_watch(0, GLib.PRIORITY_DEFAULT, GLib.IO_IN | GLib.IO_HUP, self.on_stdin)
        for signum in (signal.SIGTERM, signal.SIGINT):
            GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, self.quit)
        GLib.timeout_add(CLEANUP_INTERVAL_MS, self.on_cleanup_tick)
        emit("ready", port=self.server.get_bound_port())
        self.loop.run()

    def quit(self) -> bool:
        self.loop.quit()
        return False


def main(argv: list[str]) -> int:
    Gst.init(None)
    server = CameraServer(parse_args(argv))
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

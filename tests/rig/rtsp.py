"""Control tests/rig/rtsp_server.py (a GStreamer RTSP camera) from the test's event loop."""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.rig.prereq import SYSTEM_PYTHON
from tests.rig.process import finish_tasks, stop_process

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
READY_TIMEOUT_S = 30.0  # first GStreamer start on a cold, busy 2-core machine is slow
STATUS_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
READER_TIMEOUT_S = 5.0  # pipes a stray grandchild could hold open

Status = dict[str, Any]


class RtspServerError(RuntimeError):
    pass


class RtspServer:
    """One simulated camera. Events from the server are kept in `events`."""

    def __init__(
        self,
        mounts: Mapping[str, str],
        user: str | None = None,
        password: str | None = None,
        *,
        shared: bool = True,
        port: int = 0,
        session_timeout_s: int | None = None,
        auth_method: str = "digest",
        keep_encoding: bool = False,
        udp_ports: tuple[int, int] | None = None,
    ) -> None:
        if not mounts:
            raise ValueError("at least one mount is needed")
        self.mounts = {_mount_path(path): launch for path, launch in mounts.items()}
        self.user = user
        self.password = password
        self.shared = shared
        self.port = port
        self.session_timeout_s = session_timeout_s
        self.auth_method = auth_method
        self.keep_encoding = keep_encoding  # PLAY never restarts a shared media: see rtsp_server.py
        self.udp_ports = udp_ports
        self.events: list[dict[str, Any]] = []
        self.clients_connected_total = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._ready: asyncio.Future[int] | None = None
        self._statuses: asyncio.Queue[Status | None] = asyncio.Queue()
        self._status_lock = asyncio.Lock()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=40)

    def url(self, mount: str, with_credentials: bool = True) -> str:
        userinfo = ""
        if with_credentials and self.user is not None:
            userinfo = f"{quote(self.user, safe='')}:{quote(self.password or '', safe='')}@"
        return f"rtsp://{userinfo}127.0.0.1:{self.port}{_mount_path(mount)}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def _command(self) -> list[str]:
        cmd = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port)]
        for path, launch in self.mounts.items():
            cmd += ["--mount", f"{path}={launch}"]
        cmd.append("--shared" if self.shared else "--no-shared")
        if self.user is not None:
            cmd += ["--user", self.user, "--password", self.password or ""]
            cmd += ["--auth-method", self.auth_method]
        if self.session_timeout_s is not None:
            cmd += ["--session-timeout", str(self.session_timeout_s)]
        if self.keep_encoding:
            cmd.append("--keep-encoding")
        if self.udp_ports is not None:
            cmd += ["--udp-ports", f"{self.udp_ports[0]}-{self.udp_ports[1]}"]
        return cmd

    async def start(self) -> None:
        """Start (or restart, on the same port: a camera reboot) and wait until listening."""
        if self.running:
            raise RtspServerError("already running")
        self._ready = asyncio.get_running_loop().create_future()
        self._statuses = asyncio.Queue()
        self._proc = await asyncio.create_subprocess_exec(
            *self._command(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._read_events(self._proc.stdout)),
            asyncio.create_task(self._read_stderr(self._proc.stderr)),
        ]
        try:
            self.port = await asyncio.wait_for(self._ready, READY_TIMEOUT_S)
        except (TimeoutError, RtspServerError) as exc:
            await self.stop()
            raise RtspServerError(f"RTSP server did not start: {exc}{self._stderr()}") from exc

    async def stop(self) -> None:
        """SIGTERM (SIGKILL if it hangs) and wait, every step bounded; a no-op when not
        running."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        await stop_process(proc, STOP_TIMEOUT_S)
        readers, self._readers = self._readers, []
        await finish_tasks(readers, READER_TIMEOUT_S)

    async def status(self) -> Status:
        """{"sessions": sessions in the server's pool, "clients": open RTSP connections}."""
        async with self._status_lock:
            proc = self._proc
            if proc is None or proc.stdin is None or proc.returncode is not None:
                raise RtspServerError("RTSP server is not running")
            proc.stdin.write(b"status\n")
            await proc.stdin.drain()
            reply = await asyncio.wait_for(self._statuses.get(), STATUS_TIMEOUT_S)
        if reply is None:
            raise RtspServerError(f"RTSP server exited{self._stderr()}")
        return reply

    async def wait_for(
        self, predicate: Callable[[Status], bool], timeout: float = 10.0, interval: float = 0.05
    ) -> Status:
        """Poll status() until predicate(status) holds; TimeoutError shows the last status."""
        deadline = time.monotonic() + timeout
        while True:
            current = await self.status()
            if predicate(current):
                return current
            if time.monotonic() >= deadline:
                raise TimeoutError(f"RTSP server status still {current} after {timeout} s")
            await asyncio.sleep(interval)

    async def _read_events(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            try:
                event = json.loads(line)
            except ValueError:
                self.stderr_tail.append(line.decode(errors="replace").rstrip())
                continue
            self._on_event(event)
        # EOF: the process is gone; wake anyone waiting on it.
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(RtspServerError("exited before it was ready"))
        self._statuses.put_nowait(None)

    def _on_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        kind = event.get("event")
        if kind == "ready" and self._ready is not None and not self._ready.done():
            self._ready.set_result(int(event["port"]))
        elif kind == "client-connected":
            self.clients_connected_total += 1
        elif kind == "status":
            self._statuses.put_nowait({k: v for k, v in event.items() if k != "event"})
        elif kind == "error":
            self.stderr_tail.append(f"error event: {event.get('message')}")

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.stderr_tail.append(line.decode(errors="replace").rstrip())

    def _stderr(self) -> str:
        return "\n  " + "\n  ".join(self.stderr_tail) if self.stderr_tail else ""


def _mount_path(mount: str) -> str:
    return mount if mount.startswith("/") else f"/{mount}"


class RtspPlayer:
    """An independent RTSP client (GStreamer's rtspsrc, RTP over TCP) that keeps a
    camera's shared media playing, as a camera's other viewers (an NVR) would: the
    encoder then never restarts when camgate's connection drops."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> RtspPlayer:
        self._proc = await asyncio.create_subprocess_exec(
            "gst-launch-1.0", "-q", "rtspsrc", f"location={self.url}", "protocols=tcp",
            "latency=0", "!", "fakesink", "sync=false",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        return self

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            await stop_process(proc, STOP_TIMEOUT_S)

"""A viewer behind a slow link: a second network namespace joined to the test's by a veth
pair, with `tc ... tbf` limiting what flows toward the viewer.

    with shaped_link() as link:          # from inside the test's namespace (tests/rig/netns.py)
        link.apply(rate_kbit=1000)       # token bucket on the gateway side's egress
        viewer = ShapedViewer(link, base_url, "cam"); await viewer.start()
        link.lift()

The gateway listens on and offers ICE candidates at GATEWAY_ADDRESS; the viewer (a real
aiortc peer, tests/rig/whep_client.py) runs as its own process inside the viewer's
namespace, so every packet to it crosses the shaped veth. tbf works in this kernel,
netem does not: the link drops what overflows the bucket's queue (`latency`), it adds
no random loss. Run as a module, this is that viewer process:

    python -m tests.rig.shaping BASE_URL CAMERA
    -> one JSON line every REPORT_S: {"frames": N, "lost_frames": L, "rtp_packets": P,
       "packets_lost": Q, "connected": true, "stream": the last status message on the
       "stream" data channel or null, "streams_seen": ["current:reason", ...]}
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.rig.netns import NetnsUnavailable, check_available, unique_name

GATEWAY_ADDRESS = "10.77.0.1"
VIEWER_ADDRESS = "10.77.0.2"
PREFIX_LENGTH = 24
GATEWAY_IF, VIEWER_IF = "shape-gw", "shape-viewer"
REPORT_S = 0.5
RECEIVE_BUFFER = 8 << 20
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_links = itertools.count(1)


def _run(*argv: str) -> None:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=30)
    if result.returncode != 0:
        raise NetnsUnavailable(f"{' '.join(argv)}: {result.stderr.strip()}")


@dataclass
class ShapedLink:
    """The viewer's namespace and the shaping on the gateway side's end of the veth."""

    viewer_namespace: str
    gateway_if: str = GATEWAY_IF
    shaped: dict[str, Any] = field(default_factory=dict)  # the current tbf, {} when lifted

    def apply(self, rate_kbit: int, *, burst_bytes: int = 16_000, latency_ms: int = 50) -> None:
        """Limit the gateway-to-viewer direction to `rate_kbit`: a token bucket of
        `burst_bytes`, and a queue that holds at most `latency_ms` worth (the rest is
        dropped, as a slow link's buffer would)."""
        _run(
            "tc", "qdisc", "replace", "dev", self.gateway_if, "root", "tbf",
            "rate", f"{rate_kbit}kbit", "burst", str(burst_bytes), "latency", f"{latency_ms}ms",
        )  # fmt: skip
        self.shaped = {"rate_kbit": rate_kbit, "burst": burst_bytes, "latency_ms": latency_ms}

    def lift(self) -> None:
        """Back to the veth's own speed."""
        if self.shaped:
            _run("tc", "qdisc", "del", "dev", self.gateway_if, "root")
            self.shaped = {}

    def in_viewer_namespace(self, *argv: str) -> list[str]:
        """A command line that runs `argv` in the viewer's namespace."""
        return ["ip", "netns", "exec", self.viewer_namespace, *argv]


@contextlib.contextmanager
def shaped_link() -> Iterator[ShapedLink]:
    """A viewer namespace joined to the calling thread's namespace (the test's): this
    side gets GATEWAY_ADDRESS, the viewer's VIEWER_ADDRESS. Removed on exit."""
    check_available()
    name = f"{unique_name()}-viewer{next(_links)}"
    _run("ip", "netns", "add", name)
    try:
        _run("ip", "link", "add", GATEWAY_IF, "type", "veth", "peer", "name", VIEWER_IF)
        _run("ip", "link", "set", VIEWER_IF, "netns", name)
        _run("ip", "addr", "add", f"{GATEWAY_ADDRESS}/{PREFIX_LENGTH}", "dev", GATEWAY_IF)
        _run("ip", "link", "set", GATEWAY_IF, "up")
        viewer = ("ip", "-n", name)
        _run(*viewer, "addr", "add", f"{VIEWER_ADDRESS}/{PREFIX_LENGTH}", "dev", VIEWER_IF)
        _run(*viewer, "link", "set", VIEWER_IF, "up")
        _run(*viewer, "link", "set", "lo", "up")
        yield ShapedLink(name)
    finally:
        # Deleting one end removes the pair; the viewer's namespace goes with its name.
        subprocess.run(["ip", "link", "del", GATEWAY_IF], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@dataclass
class RecordingFeed:
    """Stands in for a viewer's feed (gateway/feed.py's ViewerFeed) in full view, pin
    auto: `current` follows the congestion verdicts; each call is kept. It does not
    switch what is sent (the camera's one stream stays on the wire)."""

    current: str = "main"
    calls: list[tuple[float, bool, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def allow_main(self, allowed: bool, reason: str) -> None:
        self.calls.append((time.monotonic(), allowed, reason))
        self.current = "main" if allowed else "sub"
        self.changed.set()

    async def wait_call(self, n: int, timeout: float, trace: Any = None) -> None:
        """Until there have been `n` calls; AssertionError (with `trace()`) after `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.calls) < n:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            detail = trace() if trace is not None else self.calls
            raise AssertionError(f"no verdict {n} after {timeout} s: {detail}") from None


def frames_lost(timestamps: list[int], frame_ticks: int) -> int:
    """Frames missing between whole frames received, from their RTP timestamps (90 kHz)
    and the camera's frame interval in ticks: a gap of k intervals lost k - 1."""
    lost = 0
    for previous, current in itertools.pairwise(timestamps):
        gap = (current - previous) & 0xFFFFFFFF
        if 0 < gap < 1 << 31:
            lost += max(round(gap / frame_ticks) - 1, 0)
    return lost


class ShapedViewer:
    """The viewer process in the link's viewer namespace; `latest` is its last report."""

    def __init__(self, link: ShapedLink, base_url: str, camera: str, fps: int) -> None:
        self.argv = link.in_viewer_namespace(
            sys.executable, "-m", "tests.rig.shaping", base_url, camera, str(fps)
        )
        self.latest: dict[str, Any] = {}
        self.updated = asyncio.Event()
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> ShapedViewer:
        self._process = await asyncio.create_subprocess_exec(
            *self.argv, stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.PIPE
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        async for line in self._process.stdout:
            with contextlib.suppress(ValueError):
                self.latest = json.loads(line)
                self.updated.set()

    async def wait(self, what: str, done: Any, timeout: float) -> dict[str, Any]:
        """Wait until `done(latest report)`; TimeoutError naming `what`."""
        try:
            async with asyncio.timeout(timeout):
                while not (self.latest and done(self.latest)):
                    self.updated.clear()
                    await self.updated.wait()
        except TimeoutError:
            raise TimeoutError(f"viewer: no {what} after {timeout} s ({self.latest})") from None
        return self.latest

    async def close(self) -> None:
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            assert process.stdin is not None
            process.stdin.close()  # the viewer ends (and closes its WHEP session) on EOF
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._process = None


def _deepen_receive_buffers(viewer: Any) -> None:
    """A receive buffer of RECEIVE_BUFFER on the viewer's ICE sockets (SO_RCVBUFFORCE: it
    runs as root), so that the loss it reports is the link's, not this Python process
    falling behind for a moment on a loaded test machine (a player on its own device
    does not)."""
    gatherer = viewer.pc.getTransceivers()[0].receiver.transport.transport.iceGatherer
    for protocol in gatherer._connection._protocols:
        transport = getattr(protocol, "transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)


async def _view(base_url: str, camera: str, fps: int) -> None:
    from aiortc.stats import RTCInboundRtpStreamStats

    from tests.rig.whep_client import WhepViewer

    viewer = WhepViewer(base_url, camera, loopback_only=False)
    # The "stream" data channel: the gateway's status messages (docs/streams.md).
    statuses: list[dict[str, Any]] = []
    channel = viewer.pc.createDataChannel("stream")

    @channel.on("message")
    def _on_status(message: str | bytes) -> None:
        with contextlib.suppress(ValueError):
            status = json.loads(message)
            if isinstance(status, dict) and status.get("type") == "stream":
                statuses.append(status)

    await viewer.start()
    _deepen_receive_buffers(viewer)
    loop = asyncio.get_running_loop()
    stdin_closed = asyncio.Event()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def watch_stdin() -> None:
        await reader.read()
        stdin_closed.set()

    watcher = asyncio.create_task(watch_stdin())
    try:
        while not stdin_closed.is_set():
            report = await viewer.pc.getStats()
            inbound = [s for s in report.values() if isinstance(s, RTCInboundRtpStreamStats)]
            timestamps = [f.timestamp for f in viewer.frames]
            line = {
                "frames": viewer.frames_received,
                "lost_frames": frames_lost(timestamps, 90_000 // fps),
                "rtp_packets": viewer.rtp_packets,
                "packets_lost": sum(s.packetsLost for s in inbound),
                "connected": viewer.connection_state == "connected",
                "stream": statuses[-1] if statuses else None,
                "streams_seen": sorted({f"{m.get('current')}:{m.get('reason')}" for m in statuses}),
            }
            print(json.dumps(line), flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stdin_closed.wait(), REPORT_S)
    finally:
        watcher.cancel()
        await viewer.close()


def main(argv: list[str]) -> int:
    base_url, camera, fps = argv[0], argv[1], int(argv[2])
    asyncio.run(_view(base_url, camera, fps))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Exhaustion: a flood of WHEP offers that never connect and of half-open HTTP connections
against camgate running under a 1,024-descriptor limit. The viewer already playing keeps
playing, the admin still gets answers and can start a viewer, the log stays short, and
the descriptors come back when the flood ends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gateway.webrtc.limits import Phase
from tests.integration.conftest import GatewayFactory
from tests.rig.net import free_port, wait_port
from tests.rig.wait import wait_until
from tests.rig.whep_client import WhepViewer

pytestmark = pytest.mark.attack

ADMIN_PASSWORD = "admin password 1"
VIEWER_PASSWORD = "viewer password 1"
NOFILE = 1024
WHEP_POSTS = 1100
SLOW_CONNECTIONS = 1000
# The flood comes from other addresses than the real users (127.0.0.1): all of 127/8 is lo.
WHEP_ATTACKER = "127.0.0.66"
SLOW_ATTACKERS = [f"127.0.1.{i}" for i in range(1, 21)]
OFFER = Path(__file__).parents[1] / "unit" / "data" / "chromium156_offer.sdp"
LOG_LINES_MAX = 200
DISCONNECTED = 0  # "status" of a request whose connection the gateway closed


def offer_without_candidates() -> str:
    """A real Chromium offer; with no candidates its ICE never completes."""
    lines = OFFER.read_text().splitlines()
    return "\r\n".join(line for line in lines if not line.startswith("a=candidate")) + "\r\n"


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def cli(state: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "--state-dir",
        str(state),
        *args,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    return out.decode().strip()


class Camgate:
    """camgate as a subprocess under `prlimit --nofile`, its log in a file."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.state = tmp_path / "state"
        self.log_path = tmp_path / "camgate.log"
        self.config = tmp_path / "camgate.yaml"
        self.config.write_text(
            f"listen: 127.0.0.1:{self.port}\n"
            "webrtc: {candidates: {addresses: [127.0.0.1]}}\n"
            f"auth: {{admin_password: '{ADMIN_PASSWORD}', viewer_password: '{VIEWER_PASSWORD}'}}\n"
            f"state_dir: {self.state}\n"
            "cameras: [{name: demo, source: demo, preload: true}]\n"
        )
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                "prlimit",
                f"--nofile={NOFILE}",
                "--",
                sys.executable,
                "-m",
                "gateway",
                "--config",
                str(self.config),
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid  # prlimit execs camgate: the same process

    async def stop(self) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode or 0

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()


@contextlib.asynccontextmanager
async def signed_in(gw: Camgate, user: str, password: str) -> AsyncIterator[aiohttp.ClientSession]:
    """A cookie session; each request on a fresh connection (no reuse of a pooled one)."""
    connector = aiohttp.TCPConnector(force_close=True)
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=jar) as http:
        body = {"user": user, "password": password}
        async with http.post(gw.base_url + "/api/auth/login", json=body) as response:
            assert response.status == 200, await response.text()
        yield http


async def cameras_as(http: aiohttp.ClientSession, gw: Camgate) -> list[dict[str, object]]:
    async with asyncio.timeout(20), http.get(gw.base_url + "/api/cameras") as response:
        assert response.status == 200
        return await response.json()  # type: ignore[no-any-return]


async def flood_whep(gw: Camgate, token: str) -> Counter[int]:
    """WHEP_POSTS offers with one viewer token, 32 at a time; none ever connects."""
    offer = offer_without_candidates()
    statuses: Counter[int] = Counter()
    retry_after_missing = 0
    connector = aiohttp.TCPConnector(limit=32, local_addr=(WHEP_ATTACKER, 0))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:

        async def post() -> None:
            nonlocal retry_after_missing
            url = gw.base_url + "/api/cameras/demo/whep"
            try:
                async with http.post(url, data=offer) as response:
                    await response.read()
                    statuses[response.status] += 1
                    if response.status in (429, 503) and "Retry-After" not in response.headers:
                        retry_after_missing += 1
            except aiohttp.ClientConnectionError:
                # An idle pooled connection the gateway replaced with a newer one.
                statuses[DISCONNECTED] += 1

        await asyncio.gather(*(post() for _ in range(WHEP_POSTS)))
    assert retry_after_missing == 0
    return statuses


Held = list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]


async def flood_once(gw: Camgate, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"}
    async with aiohttp.ClientSession(headers=headers) as http:
        url = gw.base_url + "/api/cameras/demo/whep"
        async with http.post(url, data=offer_without_candidates()) as response:
            return response.status


async def slowloris(gw: Camgate, held: Held) -> None:
    """SLOW_CONNECTIONS connections that send part of a request head, then hold."""

    for start in range(0, SLOW_CONNECTIONS, 100):
        addresses = [SLOW_ATTACKERS[i % len(SLOW_ATTACKERS)] for i in range(start, start + 100)]
        await asyncio.gather(*(open_half(gw.port, address, held) for address in addresses))


async def open_half(port: int, address: str, held: Held) -> None:
    """Open a connection from `address`, send part of a request head, keep it in `held`."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
        writer.write(b"GET /api/cameras HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        await writer.drain()
    except OSError:
        return  # refused or closed by the gateway: that is its defence working
    held.append((reader, writer))


async def test_whep_and_slowloris_floods_under_a_descriptor_limit(tmp_path: Path) -> None:
    gw = Camgate(tmp_path)
    token = await cli(gw.state, "token", "create", "attacker", "--role", "viewer")
    await gw.start()
    held: Held = []
    try:
        await wait_port(gw.port, timeout=60)
        async with (
            signed_in(gw, "viewer", VIEWER_PASSWORD) as viewer_http,
            signed_in(gw, "admin", ADMIN_PASSWORD) as admin_http,
        ):
            await wait_until_live(admin_http, gw)
            viewer = WhepViewer(gw.base_url, "demo", http=viewer_http)
            try:
                await viewer.start()
                await viewer.wait_frames(10, timeout=30)
                baseline = open_fds(gw.pid)

                whep = asyncio.create_task(flood_whep(gw, token))
                await slowloris(gw, held)
                statuses = await whep
                peak = open_fds(gw.pid)

                # The flood is held open: the viewer plays, the admin is answered and
                # can start a viewer of its own.
                frames = viewer.frames_received
                await viewer.wait_frames(frames + 30, timeout=30)
                assert (await cameras_as(admin_http, gw))[0]["state"] == "live"
                admin_viewer = WhepViewer(gw.base_url, "demo", http=admin_http)
                try:
                    await admin_viewer.start()
                    await admin_viewer.wait_frames(5, timeout=30)
                finally:
                    await admin_viewer.close()

                assert set(statuses) <= {201, 429, 503, DISCONNECTED}, statuses
                # One token, one address: at most 16 sessions connecting at a time; the
                # pending ones expire after 30 s, so a minute of flooding gets few more.
                assert statuses[201] <= 48, statuses
                assert statuses[429] >= WHEP_POSTS - 48 - statuses[DISCONNECTED], statuses
                assert statuses[DISCONNECTED] < WHEP_POSTS // 4, statuses
                assert peak < NOFILE - 32, peak

                assert peak < 512, peak  # 1,000 connections were not all kept

                # Half-open connections are closed by the gateway (header timeout 15 s);
                # pending sessions expire (connect deadline 30 s) and free their sockets.
                async with asyncio.timeout(60):
                    await asyncio.gather(*(reader.read() for reader, _ in held))
                await wait_until(lambda: open_fds(gw.pid) <= baseline + 4, timeout=90)
                assert (await flood_once(gw, token)) == 201  # the slots came back
                frames = viewer.frames_received
                await viewer.wait_frames(frames + 30, timeout=30)
                assert viewer.connection_state == "connected"
            finally:
                await viewer.close()
    finally:
        for _, writer in held:
            writer.close()
        code = await gw.stop()
    lines = gw.log_lines()
    print(f"statuses {dict(statuses)}, fds baseline {baseline} peak {peak}, {len(lines)} lines")
    assert code == 0, "\n".join(lines[-40:])
    assert not any("Traceback" in line for line in lines), "\n".join(lines[-80:])
    assert len(lines) < LOG_LINES_MAX, "\n".join(lines[:80])


async def wait_until_live(http: aiohttp.ClientSession, gw: Camgate) -> None:
    deadline = time.monotonic() + 60
    while (await cameras_as(http, gw))[0]["state"] != "live":
        assert time.monotonic() < deadline, "the demo camera never went live"
        await asyncio.sleep(0.2)


async def test_half_open_connections_from_the_admins_own_address(
    start_gateway: GatewayFactory,
) -> None:
    """Behind one NAT the attacker has the admin's address: its half-open connections
    replace each other, and a real request on a new connection is still answered."""
    gw = await start_gateway()
    guard = gw.gateway.connections
    held: Held = []
    try:
        for _ in range(5):
            await asyncio.gather(*(open_half(gw.port, "127.0.0.1", held) for _ in range(100)))
        assert len(guard) <= guard.limits.max_per_address
        assert guard.replaced >= 500 - guard.limits.max_per_address
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            for _ in range(3):
                async with asyncio.timeout(20), http.get(gw.base_url + "/api/cameras") as answer:
                    assert answer.status == 200
    finally:
        for _, writer in held:
            writer.close()


async def test_a_whep_offer_trickled_slowly_is_cut_off(start_gateway: GatewayFactory) -> None:
    gw = await start_gateway()
    offer = offer_without_candidates().encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        head = (
            "POST /api/cameras/demo/whep HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(offer)}\r\n\r\n"
        )
        writer.write(head.encode() + offer[:100])  # ... and the rest never comes
        await writer.drain()
        async with asyncio.timeout(60):
            status_line = await reader.readline()
            await reader.readuntil(b"the request body came too slowly")
        assert status_line.split()[1] == b"408", status_line
    finally:
        writer.close()
    assert len(gw.gateway.sessions) == 0
    assert gw.gateway.sessions.limits.count(Phase.PENDING) == 0  # its slot was given back

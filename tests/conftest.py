"""Fixtures of the test rig (tests/rig/), shared by every test directory.

Every test outside tests/unit/ runs in its own network namespace holding only `lo`
(see tests/rig/netns.py): servers, aiortc peers, Chromium and subprocesses it starts can
talk to each other on 127.0.0.1 and to nothing else. Fixtures that open sockets or
start processes must be function-scoped (or depend on `netns`) to land inside it.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest
from playwright.async_api import Browser, async_playwright

from tests.rig import prereq
from tests.rig.browser import launch_chromium
from tests.rig.mosquitto import Mosquitto
from tests.rig.netns import (
    NetNamespace,
    NetnsUnavailable,
    check_available,
    isolated_namespace,
    remove_stale,
)
from tests.rig.rtsp import RtspServer
from tests.rig.whep_client import WhepViewer

UNIT_TESTS = Path(__file__).parent / "unit"


def pytest_sessionstart(session: pytest.Session) -> None:
    with contextlib.suppress(NetnsUnavailable):
        check_available()
        remove_stale()


@pytest.fixture(autouse=True)
def netns(request: pytest.FixtureRequest) -> Iterator[NetNamespace | None]:
    """The test's private network namespace (None for unit tests, or when not root)."""
    if request.node.path.is_relative_to(UNIT_TESTS):
        yield None
        return
    with contextlib.ExitStack() as stack:
        try:
            namespace = stack.enter_context(isolated_namespace())
        except NetnsUnavailable as exc:
            warnings.warn(f"tests run without network isolation: {exc}", stacklevel=1)
            namespace = None
        yield namespace


class RtspServerFactory(Protocol):
    def __call__(
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
    ) -> Awaitable[RtspServer]: ...


@pytest.fixture
async def rtsp_server(netns: NetNamespace | None) -> AsyncIterator[RtspServerFactory]:
    """`server = await rtsp_server({"/cam": testsrc_h264()}, user=None, password=None)`.

    Keyword options: shared (one pipeline for all clients), port (0 = any; restarts keep
    it), session_timeout_s (UDP clients only), auth_method ("digest" or "basic"),
    keep_encoding (PLAY never restarts a shared media), udp_ports (server RTP port range)."""
    prereq.require_rtsp_server()
    servers: list[RtspServer] = []

    async def start(
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
    ) -> RtspServer:
        server = RtspServer(
            mounts,
            user,
            password,
            shared=shared,
            port=port,
            session_timeout_s=session_timeout_s,
            auth_method=auth_method,
            keep_encoding=keep_encoding,
            udp_ports=udp_ports,
        )
        servers.append(server)
        await server.start()
        return server

    yield start
    for server in servers:
        await server.stop()


MosquittoFactory = Callable[..., Awaitable[Mosquitto]]


@pytest.fixture
async def mosquitto(netns: NetNamespace | None, tmp_path: Path) -> AsyncIterator[MosquittoFactory]:
    """`broker = await mosquitto(users=..., tls=...)`: broker.host, broker.port,
    await broker.stop()/start()."""
    prereq.require_program("mosquitto")
    brokers: list[Mosquitto] = []

    async def start(**options: Any) -> Mosquitto:
        broker = Mosquitto(tmp_path / f"mosquitto-{len(brokers)}", **options)
        brokers.append(broker)
        await broker.start()
        return broker

    yield start
    for broker in brokers:
        await broker.stop()


@pytest.fixture
async def chromium(netns: NetNamespace | None) -> AsyncIterator[Browser]:
    """A headless Debian Chromium (Playwright Browser), closed afterwards."""
    if not Path(prereq.CHROMIUM).exists():
        prereq.missing(f"{prereq.CHROMIUM} is missing (Debian package chromium)")
    playwright = await async_playwright().start()
    try:
        browser = await launch_chromium(playwright)
        try:
            yield browser
        finally:
            await browser.close()
    finally:
        await playwright.stop()


WhepViewerFactory = Callable[..., Awaitable[WhepViewer]]


@pytest.fixture
async def whep_viewer(netns: NetNamespace | None) -> AsyncIterator[WhepViewerFactory]:
    """`viewer = await whep_viewer(base_url, camera, decode=False)`: started; closed after."""
    viewers: list[WhepViewer] = []

    async def start(base_url: str, camera: str, decode: bool = False, **kwargs: Any) -> WhepViewer:
        viewer = WhepViewer(base_url, camera, decode, **kwargs)
        viewers.append(viewer)
        return await viewer.start()

    yield start
    for viewer in viewers:
        await viewer.close()

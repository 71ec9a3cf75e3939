"""The attack suite, access side (SECURITY.md): each test performs an attack on sign-in,
first-visit setup, Host names, sessions and WHEP against a real gateway and checks it
fails: concurrent password guessing, lock-out of the owner, DNS rebinding, revoked
credentials that keep steering, another viewer's WHEP session, bodies and paths that
used to raise, open redirects, missing HSTS and CORS headers."""

from __future__ import annotations

import asyncio
import collections
import json
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from gateway.auth import service
from gateway.http.auth import COOKIE
from gateway.http.hsts import HEADER as HSTS
from tests.integration.conftest import GatewayFactory, RunningGateway
from tests.rig.wait import wait_until
from tests.rig.whep_client import WhepViewer

pytestmark = pytest.mark.attack

ADMIN_PASSWORD = "correct horse battery"
VIEWER_PASSWORD = "viewer pass 123"
CAMERAS = [{"name": "cam", "source": "demo", "preload": True}]
EVIL = "rebind.evil.example"


async def camgate(start_gateway: GatewayFactory, **auth: Any) -> RunningGateway:
    return await start_gateway(cameras=CAMERAS, auth={"enabled": True, **auth})


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def client_from(address: str) -> aiohttp.ClientSession:
    """A client whose connections come from `address` (any 127.0.0.x is on lo)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0), limit=0)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True))


async def post_json(
    http: aiohttp.ClientSession, url: str, body: Any, **headers: str
) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, str) else json.dumps(body)
    headers = {"Content-Type": "application/json", **headers}
    async with http.post(url, data=data, headers=headers) as response:
        answer = await response.json(content_type=None)
        return response.status, answer


async def sign_in(http: aiohttp.ClientSession, gw: RunningGateway, user: str, password: str) -> int:
    status, _ = await post_json(
        http, gw.base_url + "/api/auth/login", {"user": user, "password": password}
    )
    return status


async def cli(state_dir: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    """`camgate ...` as the owner runs it, beside the running gateway."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "--state-dir",
        str(state_dir),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await process.communicate(stdin.encode() if stdin else b"")
    return process.returncode or 0, out.decode()


# --- sign-in limits ------------------------------------------------------------------------


async def test_concurrent_guesses_from_one_client_hash_at_most_five(
    start_gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = 0
    real_verify = service.verify_password

    def counting_verify(password: str, encoded: str) -> bool:
        nonlocal hashes
        hashes += 1
        return real_verify(password, encoded)

    monkeypatch.setattr(service, "verify_password", counting_verify)
    # The connection guard alone would cap one address at 64 connections: lift it so all
    # 200 guesses reach the sign-in limiter at once, which is what this test is about.
    gw = await start_gateway(
        cameras=CAMERAS,
        auth={"enabled": True, "admin_password": ADMIN_PASSWORD},
        client_limits={"http_connections": 512, "http_connections_per_address": 512},
    )
    async with client_from("127.0.0.1") as http:
        statuses = await asyncio.gather(
            *(sign_in(http, gw, "admin", f"guess {i}") for i in range(200))
        )
        counts = collections.Counter(statuses)
        assert counts == {401: 5, 429: 195}
        assert hashes == 5
        # Even the right password waits now: the client used its five tries.
        assert await sign_in(http, gw, "admin", ADMIN_PASSWORD) == 429
    assert hashes == 5


async def test_others_failures_never_lock_out_a_client_without_failures(
    start_gateway: GatewayFactory,
) -> None:
    gw = await camgate(start_gateway, admin_password=ADMIN_PASSWORD)
    # Ten addresses, five wrong passwords each: 50 failures, the overall limit.
    for n in range(11, 21):
        async with client_from(f"127.0.0.{n}") as http:
            for i in range(5):
                assert await sign_in(http, gw, "admin", f"guess {n}.{i}") == 401
            assert await sign_in(http, gw, "admin", "one more") == 429
    # A new address that fails once is held back by the overall limit from then on ...
    async with client_from("127.0.0.21") as http:
        assert await sign_in(http, gw, "admin", "a guess") == 401
        assert await sign_in(http, gw, "admin", "another guess") == 429
    # ... but the owner, who has not failed, signs in from an eleventh address.
    async with client_from("127.0.0.30") as owner:
        assert await sign_in(owner, gw, "admin", ADMIN_PASSWORD) == 200
        async with owner.get(gw.base_url + "/api/cameras") as response:
            assert response.status == 200
        # Having signed in, a typo of the owner's doesn't lock it out either.
        assert await sign_in(owner, gw, "admin", "typo") == 401
        assert await sign_in(owner, gw, "admin", ADMIN_PASSWORD) == 200


# --- DNS rebinding and first-visit setup ---------------------------------------------------


async def test_dns_rebinding_cannot_claim_the_admin_password(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    gw = await camgate(start_gateway)
    code = gw.gateway.auth.setup_code  # type: ignore[union-attr]
    url = gw.base_url + "/api/auth/setup"
    # The page on rebind.evil.example talks to the gateway under its own name and origin.
    evil = {"Host": f"{EVIL}:{gw.port}", "Origin": f"http://{EVIL}:{gw.port}"}
    status, answer = await post_json(
        http, url, {"password": "attacker's choice", "code": code}, **evil
    )
    assert status == 421 and EVIL in answer["error"] and "allowed_hosts" in answer["error"]
    for path in ("/api/auth", "/api/health", "/", "/login"):
        async with http.get(gw.base_url + path, headers=evil) as response:
            assert response.status == 421, path
    assert gw.gateway.auth.needs_setup  # type: ignore[union-attr]
    # A page that keeps trying fills no log: a few lines a minute.
    for _ in range(50):
        async with http.get(gw.base_url + "/api/health", headers=evil) as response:
            assert response.status == 421
    refusals = [r for r in caplog.records if "refused a request for host" in r.getMessage()]
    assert 1 <= len(refusals) <= 5
    # Its own names are answered: IP literals, localhost, the host name and its .local.
    hostname = socket.gethostname()
    for host in ("127.0.0.1", "[::1]", "localhost", hostname, f"{hostname}.local"):
        async with http.get(gw.base_url + "/api/auth", headers={"Host": host}) as response:
            assert response.status == 200, host


async def test_dns_rebinding_is_refused_with_auth_off_and_configured_names_pass(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gw = await start_gateway(
        cameras=CAMERAS, auth={"enabled": False, "allowed_hosts": ["cams.example.org"]}
    )
    async with http.get(gw.base_url + "/api/cameras", headers={"Host": EVIL}) as response:
        assert response.status == 421
    named = {"Host": "CAMS.example.org.:8443"}
    async with http.get(gw.base_url + "/api/cameras", headers=named) as response:
        assert response.status == 200


async def test_setup_needs_the_one_time_code(
    start_gateway: GatewayFactory,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gw = await camgate(start_gateway)
    url = gw.base_url + "/api/auth/setup"
    status, answer = await post_json(http, url, {"password": ADMIN_PASSWORD})
    assert status == 403 and "camgate setup-code" in answer["error"]
    status, _ = await post_json(http, url, {"password": ADMIN_PASSWORD, "code": "AAAA-AAAA"})
    assert status == 403
    assert gw.gateway.auth.needs_setup  # type: ignore[union-attr]
    # The owner reads it on the machine (the log and the boot report show it too).
    code, shown = await cli(tmp_path / "state", "setup-code")
    assert code == 0 and shown.strip() == gw.gateway.auth.setup_code  # type: ignore[union-attr]
    status, _ = await post_json(http, url, {"password": ADMIN_PASSWORD, "code": shown.strip()})
    assert status == 200
    async with http.get(gw.base_url + "/api/cameras") as response:
        assert response.status == 200
    # Used up: gone from the state directory.
    assert (await cli(tmp_path / "state", "setup-code"))[0] == 1
    assert not (tmp_path / "state" / "setup-code").exists()
    # Guessing the code counts as failed sign-ins: five, then wait.
    gw2 = await start_gateway(
        cameras=CAMERAS, auth={"enabled": True}, state_dir=str(tmp_path / "fresh")
    )
    guesses = [
        (await post_json(http, gw2.base_url + "/api/auth/setup", {"password": "x" * 9, "code": g}))[
            0
        ]
        for g in ("A", "B", "C", "D", "E", "F")
    ]
    assert guesses == [403] * 5 + [429]
    assert ADMIN_PASSWORD not in caplog.text


# --- taking access away --------------------------------------------------------------------


async def test_a_changed_password_or_removed_account_ends_its_sessions(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await camgate(start_gateway)
    state = tmp_path / "state"
    assert (await cli(state, "password", stdin=ADMIN_PASSWORD + "\n"))[0] == 0
    assert (await cli(state, "password", "--user", "viewer", stdin=VIEWER_PASSWORD + "\n"))[0] == 0
    async with client_from("127.0.0.1") as admin, client_from("127.0.0.2") as viewer:
        assert await sign_in(admin, gw, "admin", ADMIN_PASSWORD) == 200
        assert await sign_in(viewer, gw, "viewer", VIEWER_PASSWORD) == 200
        watching = WhepViewer(gw.base_url, "cam", http=viewer)
        try:
            await watching.start()
            await watching.wait_frames(3, timeout=30)
            # The owner changes the admin password: the old admin cookie is dead.
            assert (await cli(state, "password", stdin="a new admin password\n"))[0] == 0
            async with admin.get(gw.base_url + "/api/cameras") as response:
                assert response.status == 401
            async with viewer.get(gw.base_url + "/api/cameras") as response:
                assert response.status == 200  # other accounts are untouched
            # The viewer account is removed: its cookie and its peer connection end.
            assert (await cli(state, "password", "--user", "viewer", "--remove"))[0] == 0
            async with viewer.get(gw.base_url + "/api/cameras") as response:
                assert response.status == 401
            await wait_until(lambda: len(gw.gateway.sessions) == 0, timeout=20)
            await wait_until(lambda: watching.connection_state in ("closed", "failed"), 60)
        finally:
            await watching.close()


@pytest.fixture
async def ptz_device(netns: Any) -> AsyncIterator[Any]:
    from tests.rig.onvif_device import OnvifTestDevice

    device = OnvifTestDevice(username="admin", password="secret")
    await device.start()
    yield device
    await device.stop()


async def test_a_revoked_token_can_no_longer_steer_over_its_open_data_channel(
    start_gateway: GatewayFactory, tmp_path: Path, ptz_device: Any
) -> None:
    pytest.importorskip("onvif")
    onvif = {
        "host": ptz_device.host,
        "port": ptz_device.port,
        "username": "admin",
        "password": "secret",
    }
    cameras = [{"name": "cam", "source": "rtsp://127.0.0.1:9/unused", "onvif": onvif}]
    gw = await start_gateway(cameras=cameras, auth={"admin_password": ADMIN_PASSWORD})
    await wait_until(lambda: gw.gateway.ptz_backends["cam"].capabilities.any, timeout=15)
    state = tmp_path / "state"
    code, token = await cli(state, "token", "create", "steering", "--role", "admin")
    assert code == 0
    headers = {"Authorization": f"Bearer {token.strip()}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        viewer = WhepViewer(gw.base_url, "cam", ptz=True, http=http)
        try:
            await viewer.start()
            await viewer.wait_ptz_open(timeout=30)
            assert (await viewer.ptz({"cmd": "move", "pan": 1, "duration": 0.2}))["ok"]
            await ptz_device.wait_for("ContinuousMove", timeout=10)
            assert (await cli(state, "token", "revoke", "steering"))[0] == 0
            # Straight after the revocation: refused, or the channel is already closed.
            moves = len(ptz_device.requests_of("ContinuousMove"))
            try:
                reply = await viewer.ptz({"cmd": "move", "pan": -1, "duration": 0.2}, timeout=5)
                assert reply["ok"] is False and "revoked" in reply["error"]
            except Exception as exc:  # closed: aiortc refuses to send, or no answer comes
                assert viewer.ptz_channel.readyState != "open", exc  # type: ignore[union-attr]
            # And within a moment the gateway closes the peer connection and its channel.
            await wait_until(lambda: len(gw.gateway.sessions) == 0, timeout=20)
            channel = viewer.ptz_channel
            assert channel is not None
            await wait_until(lambda: channel.readyState == "closed", timeout=60)
            assert len(ptz_device.requests_of("ContinuousMove")) == moves
            async with http.get(gw.base_url + "/api/cameras") as response:
                assert response.status == 401
        finally:
            await viewer.close()


# --- WHEP sessions belong to who opened them -----------------------------------------------


async def test_a_viewer_cannot_end_or_change_another_viewers_session(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await camgate(start_gateway, admin_password=ADMIN_PASSWORD)
    store = gw.gateway.auth.store  # type: ignore[union-attr]
    from gateway.auth.roles import Role

    alice, mallory = store.create_token("alice", Role.VIEWER), store.create_token("m", Role.VIEWER)
    admin = store.create_token("root", Role.ADMIN)

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async with aiohttp.ClientSession(headers=bearer(alice)) as alice_http:
        viewer = WhepViewer(gw.base_url, "cam", http=alice_http)
        try:
            await viewer.start()
            await viewer.wait_frames(3, timeout=30)
            assert viewer.location is not None
            async with aiohttp.ClientSession(headers=bearer(mallory)) as evil:
                frag = (
                    "a=ice-ufrag:x\r\na=ice-pwd:yyyyyyyyyyyyyyyyyyyyyy\r\na=end-of-candidates\r\n"
                )
                sdpfrag = {"Content-Type": "application/trickle-ice-sdpfrag"}
                async with evil.patch(viewer.location, data=frag, headers=sdpfrag) as response:
                    assert response.status == 404
                async with evil.delete(viewer.location) as response:
                    assert response.status == 404
            assert len(gw.gateway.sessions) == 1
            before = viewer.frames_received
            await wait_until(lambda: viewer.frames_received > before + 3, timeout=30)
            # An admin may end any session.
            async with (
                aiohttp.ClientSession(headers=bearer(admin)) as root,
                root.delete(viewer.location) as response,
            ):
                assert response.status == 200
            assert len(gw.gateway.sessions) == 0
        finally:
            await viewer.close()


# --- bodies and paths that used to raise ---------------------------------------------------


async def test_deeply_nested_bodies_and_nul_paths_are_clean_4xx(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    gw = await camgate(start_gateway)
    for path in ("/api/auth/setup", "/api/auth/login"):
        status, answer = await post_json(http, gw.base_url + path, "[" * 2100)
        assert status == 400 and "JSON" in answer["error"], path
    gw.gateway.auth.store.set_password_hash("admin", service.hash_password(ADMIN_PASSWORD))  # type: ignore[union-attr]
    assert await sign_in(http, gw, "admin", ADMIN_PASSWORD) == 200
    for raw in ("/app.js%00.html", "/%00", "/app.js%0a%0dx", "/%1b[31mred"):
        url = URL(gw.base_url + raw, encoded=True)
        async with http.get(url) as response:
            assert response.status in (400, 404), raw
    assert "unhandled" not in caplog.text and "Traceback" not in caplog.text
    assert not any(c in caplog.text for c in "\x00\x1b\r")


# --- HSTS and CORS ------------------------------------------------------------------------


async def test_hsts_under_tls_only(start_gateway: GatewayFactory, tmp_path: Path) -> None:
    gw = await start_gateway(
        cameras=CAMERAS, tls="self-signed", auth={"admin_password": ADMIN_PASSWORD}
    )
    trusting = ssl.create_default_context(cafile=str(tmp_path / "state" / "tls" / "cert.pem"))
    url = gw.base_url.replace("http://", "https://")
    async with aiohttp.ClientSession() as http:
        for path, status in (("/api/health", 200), ("/api/cameras", 401), ("/api/nope", 404)):
            async with http.get(url + path, ssl=trusting) as response:
                assert response.status == status
                assert response.headers[HSTS] == "max-age=15552000", path
    plain = await start_gateway(cameras=CAMERAS, state_dir=str(tmp_path / "plain"))
    async with aiohttp.ClientSession() as http, http.get(plain.base_url + "/api/health") as r:
        assert HSTS not in r.headers


async def test_whep_refusals_carry_cors_headers(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gw = await camgate(start_gateway, admin_password=ADMIN_PASSWORD)
    player = {"Origin": "http://player.example", "Content-Type": "application/sdp"}
    for auth in ({}, {"Authorization": "Bearer wrong"}):
        async with http.post(
            gw.base_url + "/api/cameras/cam/whep", data="v=0\r\n", headers={**player, **auth}
        ) as response:
            assert response.status == 401
            assert response.headers["Access-Control-Allow-Origin"] == "*"
        async with http.delete(
            gw.base_url + "/api/cameras/cam/whep/x", headers={**player, **auth}
        ) as response:
            assert response.status == 401
            assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.browser
async def test_in_the_browser_cross_origin_refusal_is_readable_and_next_stays_home(
    start_gateway: GatewayFactory, chromium: Any
) -> None:
    gw = await camgate(start_gateway, admin_password=ADMIN_PASSWORD)
    context = await chromium.new_context()
    page = await context.new_page()
    # A WHEP player on another origin (localhost is another origin than 127.0.0.1).
    await page.goto(f"http://localhost:{gw.port}/api/health")
    status = await page.evaluate(
        """async (url) => {
            const response = await fetch(url, {method: 'POST', body: 'v=0',
              headers: {'Content-Type': 'application/sdp', Authorization: 'Bearer wrong'}});
            return response.status;
        }""",
        gw.base_url + "/api/cameras/cam/whep",
    )
    assert status == 401  # not "Failed to fetch"
    # Open redirect: after signing in, a next of "/<tab>/evil.example/" stays home.
    await page.goto(gw.base_url + "/login?next=/%09/evil.example/")
    form = page.locator("#login-form")
    await form.wait_for(state="visible")
    await form.locator('input[name="password"]').fill(ADMIN_PASSWORD)
    await form.locator("button").click()
    await page.wait_for_url(gw.base_url + "/")
    assert COOKIE in {c["name"] for c in await context.cookies()}
    await context.close()

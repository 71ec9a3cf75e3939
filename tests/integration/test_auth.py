"""Auth end to end against a real gateway: every route is guarded (the test walks the app's
routes, so a new route without a rule fails here), first-visit setup, sign-in limits,
tokens, CSRF, viewer accounts that may watch but not steer, TLS."""

from __future__ import annotations

import asyncio
import re
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.auth.roles import Access, Role, declared_access
from gateway.http.auth import COOKIE
from tests.conftest import WhepViewerFactory
from tests.integration.conftest import GatewayFactory, RunningGateway
from tests.rig.whep_client import WhepViewer

ADMIN_PASSWORD = "correct horse battery"
VIEWER_PASSWORD = "viewer pass 123"
CAMERAS = [{"name": "cam", "source": "demo", "preload": True}]


async def camgate(start_gateway: GatewayFactory, **auth: Any) -> RunningGateway:
    return await start_gateway(cameras=CAMERAS, auth={"enabled": True, **auth})


def concrete(path: str) -> str:
    """A request path for a route template: {camera} -> cam, {path} -> app.js, ..."""
    path = re.sub(r"\{path[^}]*\}", "app.js", path)
    path = path.replace("{camera}", "cam")
    return re.sub(r"\{[^}]+\}", "x", path)


def routes(app: web.Application) -> list[tuple[str, str, Access | None]]:
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        template = info.get("formatter") or info.get("path")
        if route.method == "HEAD" or template is None:
            continue
        found.append((route.method, template, declared_access(route.handler)))
    return found


async def call(
    http: aiohttp.ClientSession, gw: RunningGateway, method: str, path: str, **kwargs: Any
) -> aiohttp.ClientResponse:
    async with http.request(
        method, gw.base_url + path, allow_redirects=False, **kwargs
    ) as response:
        await response.read()
        return response


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def sign_in(http: aiohttp.ClientSession, gw: RunningGateway, user: str, password: str):
    return await call(
        http, gw, "POST", "/api/auth/login", json={"user": user, "password": password}
    )


# --- every route --------------------------------------------------------------------------


async def test_every_route_declares_who_may_call_it(start_gateway: GatewayFactory) -> None:
    gw = await camgate(start_gateway, admin_password=ADMIN_PASSWORD)
    app = gw.gateway.runner.app  # type: ignore[union-attr]
    undeclared = [(m, p) for m, p, level in routes(app) if level is None]
    assert undeclared == []
    # Only sign-in, health and CORS preflights are public.
    public = {(m, p) for m, p, level in routes(app) if level is Access.PUBLIC}
    assert {p for _, p in public} <= {
        "/api/health",
        "/api/auth",
        "/api/auth/login",
        "/api/auth/setup",
        "/api/auth/logout",
        "/login",
        "/login.js",
        "/style.css",
        "/favicon.svg",
        "/api/cameras/{camera}/whep",
        "/api/cameras/{camera}/whep/{session}",
    }
    assert all(m == "OPTIONS" for m, p in public if "/whep" in p)


async def test_unauthenticated_and_underprivileged_callers_are_refused(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gw = await camgate(start_gateway, admin_password=ADMIN_PASSWORD)
    app = gw.gateway.runner.app  # type: ignore[union-attr]
    viewer_token = gw.gateway.auth.store.create_token("script", Role.VIEWER)  # type: ignore[union-attr]
    checked = 0
    for method, template, level in routes(app):
        if level is Access.PUBLIC:
            continue
        path = concrete(template)
        response = await call(http, gw, method, path)
        assert response.status == 401, (method, path, response.status)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        if method == "GET" and not path.startswith("/api/"):  # a browser goes to sign in
            page = await call(http, gw, method, path, headers={"Accept": "text/html"})
            assert page.status == 303, (method, path)
            assert page.headers["Location"] == f"/login?next={path}"
        bad = await call(http, gw, method, path, headers={"Authorization": "Bearer nope"})
        assert bad.status == 401, (method, path)
        as_viewer = await call(
            http, gw, method, path, headers={"Authorization": f"Bearer {viewer_token}"}
        )
        if level is Access.ADMIN:
            assert as_viewer.status == 403, (method, path)
        else:
            assert as_viewer.status not in (401, 403), (method, path, as_viewer.status)
        checked += 1
    assert checked >= 10


# --- first visit, sign-in, sessions -------------------------------------------------------


async def test_first_visit_sets_the_admin_password_and_it_persists(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    gw = await camgate(start_gateway)
    state = await (await http.get(gw.base_url + "/api/auth")).json()
    assert state == {
        "enabled": True,
        "setup_needed": True,
        "user": None,
        "role": None,
        "can_steer": False,
    }
    api = await call(http, gw, "GET", "/api/cameras")
    assert api.status == 401
    code = gw.gateway.auth.setup_code  # type: ignore[union-attr]
    short = await call(
        http, gw, "POST", "/api/auth/setup", json={"password": "short", "code": code}
    )
    assert short.status == 400
    done = await call(
        http, gw, "POST", "/api/auth/setup", json={"password": ADMIN_PASSWORD, "code": code}
    )
    assert done.status == 200
    cookie = done.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and not cookie["secure"]
    assert (await call(http, gw, "GET", "/api/cameras")).status == 200
    again = await call(
        http, gw, "POST", "/api/auth/setup", json={"password": "another one!", "code": code}
    )
    assert again.status == 409
    stored = (tmp_path / "state" / "auth.json").read_text()
    assert ADMIN_PASSWORD not in stored and "scrypt$" in stored
    assert (tmp_path / "state" / "auth.json").stat().st_mode & 0o077 == 0

    # Signed out, then in again; the password is kept across a restart.
    assert (await call(http, gw, "POST", "/api/auth/logout")).status == 200
    assert (await call(http, gw, "GET", "/api/cameras")).status == 401
    await gw.gateway.stop()
    gw = await camgate(start_gateway)
    assert (await (await http.get(gw.base_url + "/api/auth")).json())["setup_needed"] is False
    assert (await sign_in(http, gw, "admin", "wrong password")).status == 401
    assert (await sign_in(http, gw, "admin", ADMIN_PASSWORD)).status == 200
    assert (await call(http, gw, "GET", "/api/cameras")).status == 200


async def test_failed_sign_ins_are_rate_limited(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    gw = await camgate(start_gateway, admin_password=ADMIN_PASSWORD)
    statuses = [(await sign_in(http, gw, "admin", f"guess {i}")).status for i in range(6)]
    assert statuses == [401] * 5 + [429]
    limited = await sign_in(http, gw, "admin", ADMIN_PASSWORD)  # even the right one, for now
    assert limited.status == 429 and int(limited.headers["Retry-After"]) > 0
    assert (await sign_in(http, gw, "nobody", "x")).status == 429
    assert ADMIN_PASSWORD not in caplog.text and "guess 1" not in caplog.text


async def test_viewer_account_watches_but_cannot_steer(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, whep_viewer: WhepViewerFactory
) -> None:
    gw = await camgate(
        start_gateway, admin_password=ADMIN_PASSWORD, viewer_password=VIEWER_PASSWORD
    )
    assert (await sign_in(http, gw, "viewer", VIEWER_PASSWORD)).status == 200
    cameras = await (await http.get(gw.base_url + "/api/cameras")).json()
    assert cameras[0]["ptz"] is None  # no pad in a viewer account's page
    denied = await call(http, gw, "POST", "/api/cameras/cam/ptz", json={"v": 1, "cmd": "stop"})
    assert denied.status == 403
    # The data channel has the rights of the session that opened the peer connection.
    viewer = WhepViewer(gw.base_url, "cam", ptz=True, http=http)
    try:
        await viewer.start()
        await viewer.wait_ptz_open(timeout=30)
        reply = await viewer.ptz({"cmd": "stop"})
        assert reply["ok"] is False and reply["error"] == "this account may watch but not steer"
        await viewer.wait_frames(5, timeout=30)
    finally:
        await viewer.close()


async def test_cross_site_writes_with_a_cookie_are_refused(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gw = await camgate(start_gateway, admin_password=ADMIN_PASSWORD)
    assert (await sign_in(http, gw, "admin", ADMIN_PASSWORD)).status == 200
    body = {"v": 1, "cmd": "stop"}
    evil = await call(
        http, gw, "POST", "/api/cameras/cam/ptz", json=body, headers={"Origin": "http://evil.test"}
    )
    assert evil.status == 403
    own = await call(
        http, gw, "POST", "/api/cameras/cam/ptz", json=body, headers={"Origin": gw.base_url}
    )
    assert own.status == 404  # got through the guard: the demo camera has no PTZ
    login_elsewhere = await call(
        http,
        gw,
        "POST",
        "/api/auth/login",
        json={"user": "admin", "password": ADMIN_PASSWORD},
        headers={"Origin": "http://evil.test"},
    )
    assert login_elsewhere.status == 403


async def test_api_tokens_from_the_command_line(
    start_gateway: GatewayFactory, tmp_path: Path, whep_viewer: WhepViewerFactory
) -> None:
    gw = await camgate(start_gateway, admin_password=ADMIN_PASSWORD)
    state = str(tmp_path / "state")

    async def cli(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli",
            "--state-dir",
            state,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await process.communicate()
        return process.returncode or 0, out.decode()

    code, token = await cli("token", "create", "prometheus", "--role", "viewer")
    assert code == 0 and token.startswith("cg_")
    headers = {"Authorization": f"Bearer {token.strip()}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        # Prometheus, a WHEP player, a script: all with the token, no cookie.
        metrics = await http.get(gw.base_url + "/metrics")
        assert metrics.status == 200 and "camgate_camera_state" in await metrics.text()
        viewer = WhepViewer(gw.base_url, "cam", http=http)
        try:
            await viewer.start()
            await viewer.wait_frames(5, timeout=30)
        finally:
            await viewer.close()
        code, listing = await cli("token", "list")
        assert code == 0 and "prometheus\tviewer" in listing and token.strip() not in listing
        assert (await cli("token", "revoke", "prometheus"))[0] == 0
        assert (await http.get(gw.base_url + "/api/cameras")).status == 401


async def test_self_signed_tls(start_gateway: GatewayFactory, tmp_path: Path) -> None:
    gw = await start_gateway(
        cameras=CAMERAS, tls="self-signed", auth={"admin_password": ADMIN_PASSWORD}
    )
    cert = tmp_path / "state" / "tls" / "cert.pem"
    trusting = ssl.create_default_context(cafile=str(cert))
    url = gw.base_url.replace("http://", "https://")
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(url + "/api/health", ssl=trusting) as response:
            assert response.status == 200
        async with http.post(
            url + "/api/auth/login",
            json={"user": "admin", "password": ADMIN_PASSWORD},
            ssl=trusting,
        ) as response:
            assert response.status == 200
            assert response.cookies[COOKIE]["secure"]  # HTTPS: the cookie never goes plain
    with pytest.raises(aiohttp.ClientError):
        async with aiohttp.ClientSession() as plain, plain.get(gw.base_url + "/api/health"):
            pass
    # The certificate is kept: a restart serves the same one.
    first = cert.read_bytes()
    await gw.gateway.stop()
    await start_gateway(cameras=CAMERAS, tls="self-signed", auth={"admin_password": "x" * 8})
    assert cert.read_bytes() == first


async def test_metrics_text_format(start_gateway: GatewayFactory) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    gw = await start_gateway(cameras=CAMERAS)
    await gw.hub("cam").wait_live(20)
    async with aiohttp.ClientSession() as http, http.get(gw.base_url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    live = [s for s in families["camgate_camera_state"].samples if s.labels["state"] == "live"]
    assert live[0].value == 1.0
    assert families["camgate_camera_frames_received"].samples[0].value > 0
    assert families["process_resident_memory_bytes"].samples[0].value > 10_000_000
    assert "source" not in text  # no camera URLs (nor their credentials)


# --- in the browser -----------------------------------------------------------------------


@pytest.mark.browser
async def test_first_visit_in_the_browser_then_sign_out_and_in(
    start_gateway: GatewayFactory, chromium: Any
) -> None:
    gw = await camgate(start_gateway)
    context = await chromium.new_context(bypass_csp=True)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(gw.base_url + "/#camera=cam")
    await page.wait_for_url(re.compile(r"/login\?next="))
    setup = page.locator("#setup-form")
    await setup.wait_for(state="visible")
    await setup.locator('input[name="code"]').fill(gw.gateway.auth.setup_code.lower())  # type: ignore[union-attr]
    await setup.locator('input[name="password"]').fill(ADMIN_PASSWORD)
    await setup.locator('input[name="repeat"]').fill("something else")
    await setup.locator("button").click()
    await page.locator("#login-error").wait_for(state="visible")
    assert await page.locator("#login-error").text_content() == "The two passwords differ."
    await setup.locator('input[name="repeat"]').fill(ADMIN_PASSWORD)
    await setup.locator("button").click()
    # Back where the visitor was headed: the full view of the camera, playing.
    await page.wait_for_url(gw.base_url + "/#camera=cam")
    await page.wait_for_function(
        "document.querySelector('.tile[data-camera=\"cam\"]')?.dataset.state === 'live'",
        timeout=60_000,
    )
    await page.keyboard.press("Escape")  # back to the grid, where the top bar is
    sign_out = page.locator(".sign-out")
    await sign_out.wait_for(state="visible")
    await sign_out.click()
    await page.wait_for_url(re.compile(r"/login\?next="))
    form = page.locator("#login-form")
    await form.wait_for(state="visible")
    await form.locator('input[name="password"]').fill("wrong password")
    await form.locator("button").click()
    await page.locator("#login-error").wait_for(state="visible")
    assert "wrong user name or password" in (await page.locator("#login-error").text_content())
    await form.locator('input[name="password"]').fill(ADMIN_PASSWORD)
    await form.locator("button").click()
    await page.wait_for_function("document.querySelectorAll('.tile').length === 1")
    assert errors == []
    await context.close()

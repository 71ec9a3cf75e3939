"""Sign-in for the viewer and the guard in front of every route.

Every handler declares its access with @access (gateway/auth/roles.py). The guard:
- finds the caller: `Authorization: Bearer <token>` (scripts, WHEP players, Prometheus)
  or the session cookie (the viewer);
- refuses a route that declares no access at all (fail closed);
- sends a browser without a session to /login, answers other callers 401 (or 403 when the
  role is too low);
- refuses cookie-authenticated writes from another origin (CSRF), on top of the cookie's
  SameSite=Strict;
- before all that, refuses requests for a Host name that is not the gateway's own (DNS
  rebinding, gateway/auth/hosts.py), with auth on or off.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from gateway.auth.passwords import PasswordError
from gateway.auth.roles import Access, Identity, access, declared_access
from gateway.auth.service import Authenticator, LoginRefused, SetupRefused
from gateway.auth.store import AuthFileError
from gateway.http.cors import CORS
from gateway.http.errors import error_response
from gateway.http.keys import AUTH, WEB_ROOT
from gateway.http.static import SECURITY_HEADERS

log = logging.getLogger("camgate.auth")

COOKIE = "camgate_session"
IDENTITY = web.RequestKey("camgate_identity", Identity)  # the caller, found by the guard
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_LOGIN_BODY = 4096
# The sign-in page and what it loads: reachable before signing in.
PUBLIC_FILES = ("login.html", "login.js", "style.css", "favicon.svg")


def identity_of(request: web.Request) -> Identity:
    """The caller, as the guard found it (routes with Access.PUBLIC may have none)."""
    identity = request.get(IDENTITY)
    assert isinstance(identity, Identity), "identity_of() on an unguarded request"
    return identity


@web.middleware
async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
    auth: Authenticator = request.app[AUTH]
    if not auth.hosts.allows(request.headers.get("Host")):
        return _not_this_host(request, auth)
    if request.match_info.http_exception is not None:
        return await handler(request)  # 404/405: nothing to protect
    level = declared_access(request.match_info.handler)
    if level is None:
        log.error("route %s declares no access: refused", request.match_info.route.resource)
        return error_response(403, "forbidden")
    identity = auth.identify(request.cookies.get(COOKIE), _bearer(request))
    if identity is not None:
        request[IDENTITY] = identity
    if level is Access.PUBLIC:
        return await handler(request)
    if identity is None:
        return _with_cors(request, _sign_in_first(request, auth))
    if not level.allows(identity.role):
        return _with_cors(
            request, error_response(403, f"the {identity.name} account may not do this")
        )
    if identity.via_cookie and request.method not in SAFE_METHODS and not _same_origin(request):
        return error_response(403, "cross-site request refused")
    return await handler(request)


def _not_this_host(request: web.Request, auth: Authenticator) -> web.Response:
    """421 Misdirected Request: this gateway does not answer to that name."""
    name = request.headers.get("Host", "")[:100].encode("ascii", "backslashreplace").decode()
    auth.host_refusals.warning("refused a request for host %r from %s", name, request.remote)
    return error_response(
        421,
        f"this gateway does not answer to the name {name!r}: open it by its address or "
        "host name, or add the name to auth.allowed_hosts in the config",
    )


def _with_cors(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """WHEP players on other origins must be able to read a 401/403, not see a network
    error: WHEP answers carry the CORS headers, refusals included."""
    if "/whep" in request.path and request.path.startswith("/api/cameras/"):
        response.headers.update(CORS)
    return response


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _sign_in_first(request: web.Request, auth: Authenticator) -> web.StreamResponse:
    browsing = "text/html" in request.headers.get("Accept", "")
    if request.method == "GET" and browsing and not request.path.startswith("/api/"):
        target = request.path_qs
        raise web.HTTPSeeOther(f"/login?next={quote(target, safe='/')}")
    if auth.needs_setup:
        message = "set the admin password first (open the viewer in a browser)"
    elif _bearer(request):
        message = "invalid API token"
    else:
        message = "sign in first, or send an API token (Authorization: Bearer ...)"
    return error_response(401, message, **{"WWW-Authenticate": 'Bearer realm="camgate"'})


def _same_origin(request: web.Request) -> bool:
    """The browser says where the request comes from: it must be this host. Behind a
    TLS-terminating proxy the scheme may differ, so only the host is compared."""
    origin = request.headers.get("Origin")
    if origin is None:
        return request.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")
    return urlsplit(origin).netloc.lower() == (request.host or "").lower()


# --- routes -------------------------------------------------------------------------------


@access(Access.PUBLIC)
async def auth_state(request: web.Request) -> web.Response:
    auth: Authenticator = request.app[AUTH]
    identity = request.get(IDENTITY)
    return web.json_response(
        {
            "enabled": auth.enabled,
            "setup_needed": auth.needs_setup,
            "user": identity.name if identity else None,
            "role": identity.role.name.lower() if identity else None,
            "can_steer": bool(identity and identity.can_steer),
        }
    )


@access(Access.PUBLIC)
async def login(request: web.Request) -> web.Response:
    auth: Authenticator = request.app[AUTH]
    body = await _json_body(request)
    user, password = body.get("user", "admin"), body.get("password")
    if not isinstance(user, str) or not isinstance(password, str):
        return error_response(400, 'send {"user": ..., "password": ...}')
    try:
        token = await auth.login(user, password, request.remote or "unknown")
    except LoginRefused as exc:
        if exc.retry_after > 0:
            retry = str(int(exc.retry_after) + 1)
            return error_response(429, str(exc), **{"Retry-After": retry})
        return error_response(401, str(exc))
    return _signed_in(request, auth, token, user)


@access(Access.PUBLIC)
async def set_up(request: web.Request) -> web.Response:
    auth: Authenticator = request.app[AUTH]
    body = await _json_body(request)
    try:
        token = await auth.set_up(body.get("password"), body.get("code"), request.remote or "")  # type: ignore[arg-type]
    except PasswordError as exc:
        return error_response(400, str(exc))
    except SetupRefused as exc:
        return error_response(403, str(exc))
    except LoginRefused as exc:
        if exc.retry_after > 0:
            retry = str(int(exc.retry_after) + 1)
            return error_response(429, str(exc), **{"Retry-After": retry})
        return error_response(409, str(exc))
    except AuthFileError as exc:
        log.error("cannot keep the admin password: %s", exc)
        return error_response(500, f"cannot save the password: {exc}")
    return _signed_in(request, auth, token, "admin")


@access(Access.PUBLIC)
async def logout(request: web.Request) -> web.Response:
    auth: Authenticator = request.app[AUTH]
    cookie = request.cookies.get(COOKIE)
    if cookie:
        auth.sessions.revoke(cookie)
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


@access(Access.PUBLIC)
async def login_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(request.app[WEB_ROOT] / "login.html", headers=SECURITY_HEADERS)


def _public_file(name: str) -> Any:
    @access(Access.PUBLIC)
    async def serve(request: web.Request) -> web.FileResponse:
        return web.FileResponse(request.app[WEB_ROOT] / name, headers=SECURITY_HEADERS)

    return serve


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(
            text='{"error": "Content-Type must be application/json"}',
            content_type="application/json",
        )
    if not _same_origin(request):  # no signing in a victim's browser from elsewhere
        raise web.HTTPForbidden(
            text='{"error": "cross-site request refused"}', content_type="application/json"
        )
    raw = await request.content.read(MAX_LOGIN_BODY + 1)
    try:
        if len(raw) > MAX_LOGIN_BODY:
            raise ValueError
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # "[[[[...": too deep
        raise web.HTTPBadRequest(
            text='{"error": "body must be a small JSON object"}', content_type="application/json"
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text='{"error": "body must be a JSON object"}', content_type="application/json"
        )
    return body


def _signed_in(request: web.Request, auth: Authenticator, token: str, user: str) -> web.Response:
    response = web.json_response({"ok": True, "user": user})
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(auth.sessions.lifetime_s),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/auth", auth_state, name="auth")
    app.router.add_post("/api/auth/login", login, name="login")
    app.router.add_post("/api/auth/setup", set_up, name="setup")
    app.router.add_post("/api/auth/logout", logout, name="logout")
    app.router.add_get("/login", login_page, name="login-page")
    for name in PUBLIC_FILES[1:]:
        app.router.add_get(f"/{name}", _public_file(name))

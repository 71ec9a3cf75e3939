"""WHEP signaling (IETF draft; the mechanics of WHIP, RFC 9725) for each camera.

POST   /api/cameras/{camera}/whep               application/sdp offer -> 201 + Location + answer
       ?view=grid|full&pin=auto|main|sub        the viewer's first stream (docs/streams.md)
PATCH  /api/cameras/{camera}/whep/{session}     application/trickle-ice-sdpfrag -> 204
DELETE /api/cameras/{camera}/whep/{session}     -> 200
"""

from __future__ import annotations

import asyncio
import functools
import logging

from aiohttp import web

from gateway import fdbudget
from gateway.auth.roles import Access, Identity, Role, access
from gateway.feed import PINS, VIEWS
from gateway.http.auth import identity_of
from gateway.http.cors import CORS
from gateway.http.errors import error_response
from gateway.http.keys import AUTH, HUBS, SESSIONS
from gateway.webrtc.limits import Client, SessionLimitExceeded, SessionSlot
from gateway.webrtc.sdpfrag import MAX_FRAGMENT_BYTES, FragmentError, parse_sdpfrag
from gateway.webrtc.session import MAX_OFFER_BYTES, OfferError, SessionConflict, WhepSession

log = logging.getLogger("camgate.whep")

SDP = "application/sdp"
BODY_TIMEOUT_S = 10.0
SDPFRAG = "application/trickle-ice-sdpfrag"


# Third-party WHEP players run on other origins.
async def read_text_body(request: web.Request, content_type: str, limit: int) -> str:
    """The body as text, or an HTTPException with the right status."""
    if request.content_type != content_type:
        raise web.HTTPUnsupportedMediaType(
            text=f'{{"error": "Content-Type must be {content_type}"}}',
            content_type="application/json",
            headers=CORS,
        )
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    try:  # a body trickled in a byte at a time must not hold the connection
        async with asyncio.timeout(BODY_TIMEOUT_S):
            body = await _read_up_to(request, limit + 1)
    except TimeoutError:
        raise web.HTTPRequestTimeout(
            text='{"error": "the request body came too slowly"}',
            content_type="application/json",
            headers=CORS,
        ) from None
    if len(body) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise web.HTTPBadRequest(
            text='{"error": "body is not UTF-8"}', content_type="application/json", headers=CORS
        ) from None


async def _read_up_to(request: web.Request, size: int) -> bytes:
    """The whole body, or its first `size` bytes (read() alone returns one chunk)."""
    body = b""
    while len(body) < size:
        chunk = await request.content.read(size - len(body))
        if not chunk:
            break
        body += chunk
    return body


@access(Access.VIEWER)
async def offer(request: web.Request) -> web.Response:
    """Admission first, before the body is read (a refusal costs next to nothing); the
    session then holds its place in the limits until it ends."""
    try:
        slot = _admit(request)
    except SessionLimitExceeded as exc:
        return error_response(exc.status, str(exc), **CORS, **_retry(exc.retry_after_s))
    try:
        response = await _answer_offer(request)
    except SessionLimitExceeded as exc:  # ran out of resources while answering
        slot.release()
        return error_response(exc.status, str(exc), **CORS, **_retry(exc.retry_after_s))
    except BaseException:
        slot.release()
        raise
    session = _created_session(request, response)
    if session is None:
        slot.release()
    else:
        request.app[SESSIONS].hold(session, slot)
    return response


@access(Access.VIEWER)
async def _answer_offer(request: web.Request) -> web.Response:
    hub = request.app[HUBS].get(request.match_info["camera"])
    if hub is None:
        return error_response(404, "unknown camera", **CORS)
    view = request.query.get("view", "full")
    pin = request.query.get("pin", "auto")
    if view not in VIEWS:
        return error_response(400, "view must be grid or full", **CORS)
    if pin not in PINS:
        return error_response(400, "pin must be auto, main or sub", **CORS)
    sdp = await read_text_body(request, SDP, MAX_OFFER_BYTES)
    identity = identity_of(request)
    try:
        can_steer = identity.can_steer  # the data channel gets the same rights
        session, answer = await request.app[SESSIONS].open(
            hub,
            sdp,
            can_steer=can_steer,
            view=view,  # type: ignore[arg-type]
            pin=pin,  # type: ignore[arg-type]
        )
    except OfferError as exc:
        return error_response(400, str(exc), **CORS)
    session.owner = identity
    session.still_authorised = functools.partial(request.app[AUTH].still_valid, identity)
    location = request.app.router["whep-session"].url_for(camera=hub.name, session=session.id)
    return web.Response(
        status=201,
        text=answer,
        content_type=SDP,
        headers={"Location": str(location), "ETag": f'"{session.id}"', **CORS},
    )


def _created_session(request: web.Request, response: web.Response) -> WhepSession | None:
    if response.status != 201:
        return None
    session_id = response.headers["ETag"].strip('"')
    return request.app[SESSIONS].get(session_id, request.match_info["camera"])


def _admit(request: web.Request) -> SessionSlot:
    identity = identity_of(request)
    # With auth off everyone is the same anonymous caller: only addresses tell them apart.
    credential = identity.name if request.app[AUTH].enabled else None
    client = Client(credential, request.remote or "unknown")
    slot = request.app[SESSIONS].limits.admit(client)
    if fdbudget.short():
        slot.release()
        raise SessionLimitExceeded(503, "the gateway is short of resources: retry soon")
    return slot


def _retry(seconds: int) -> dict[str, str]:
    return {"Retry-After": str(seconds)}


def _session(request: web.Request) -> WhepSession:
    """The session named in the URL, if the caller opened it (an admin may touch any):
    to anyone else it does not exist."""
    session = request.app[SESSIONS].get(request.match_info["session"], request.match_info["camera"])
    if session is None or not _may_touch(identity_of(request), session):
        raise web.HTTPNotFound(
            text='{"error": "unknown session"}', content_type="application/json", headers=CORS
        )
    return session


def _may_touch(caller: Identity, session: WhepSession) -> bool:
    owner = session.owner
    return owner is None or caller.role >= Role.ADMIN or caller.holder == owner.holder


@access(Access.VIEWER)
async def patch(request: web.Request) -> web.Response:
    session = _session(request)
    text = await read_text_body(request, SDPFRAG, MAX_FRAGMENT_BYTES)
    try:
        await request.app[SESSIONS].trickle(session, parse_sdpfrag(text))
    except FragmentError as exc:
        return error_response(400, str(exc), **CORS)
    except SessionConflict as exc:
        return error_response(422, str(exc), **CORS)
    return web.Response(status=204, headers=CORS)


@access(Access.VIEWER)
async def delete(request: web.Request) -> web.Response:
    session = _session(request)
    await request.app[SESSIONS].close(session)
    return web.Response(status=200, headers=CORS)


@access(Access.PUBLIC)
async def preflight(_request: web.Request) -> web.Response:
    return web.Response(status=204, headers={**CORS, "Accept-Post": SDP, "Accept-Patch": SDPFRAG})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/cameras/{camera}/whep", offer, name="whep")
    app.router.add_route("OPTIONS", "/api/cameras/{camera}/whep", preflight)
    app.router.add_patch("/api/cameras/{camera}/whep/{session}", patch, name="whep-session")
    app.router.add_delete("/api/cameras/{camera}/whep/{session}", delete)
    app.router.add_route("OPTIONS", "/api/cameras/{camera}/whep/{session}", preflight)

"""HTTP Strict Transport Security under `tls:`: once a browser has seen the gateway over
HTTPS, it never talks to it in plain HTTP again (no cookie or password over plain HTTP
through a downgrade), for MAX_AGE_S.

No includeSubDomains: the gateway speaks for its own name only. On a LAN its name is
`<hostname>.local` or a name in the owner's home domain, and the names under it belong
to other devices that may have no HTTPS at all. Browsers ignore HSTS on IP literals and
on certificates they don't trust, so a self-signed gateway reached by address is as before.
"""

from __future__ import annotations

from aiohttp import web

MAX_AGE_S = 180 * 86400  # half a year: long enough to matter, short if TLS is turned off
HEADER = "Strict-Transport-Security"
VALUE = f"max-age={MAX_AGE_S}"


async def _add_header(request: web.Request, response: web.StreamResponse) -> None:
    if request.secure:
        response.headers.setdefault(HEADER, VALUE)


def send_hsts(app: web.Application) -> None:
    """Every HTTPS answer of `app` carries the HSTS header (errors too)."""
    app.on_response_prepare.append(_add_header)

"""One RTSP control connection to a camera, shared by the stream client
(gateway/sources/rtsp.py) and talk back (gateway/talkback/backchannel.py).

`open_control()` connects (TLS for rtsps://, unverified: cameras' certificates are
self-signed), and `RtspControl` sends requests and reads responses, interleaved frames
and the camera's own requests on one task. It answers one 401 with the URL's
credentials, which go in the Authorization header and nowhere else; every failure is a
SourceError whose message is safe to show. The header parsers and `redirect_target()`
are the parts of the handshake both clients read the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gateway.rtsp.auth import Authenticator
from gateway.rtsp.message import (
    InterleavedFrame,
    RtspMessage,
    RtspRequest,
    RtspResponse,
    RtspStreamParser,
    build_interleaved,
    build_request,
    build_response,
)
from gateway.rtsp.url import RtspUrl
from gateway.sources.base import SourceError

log = logging.getLogger("camgate.rtsp")

MAX_REDIRECTS = 3
DEFAULT_SESSION_TIMEOUT_S = 60.0  # RFC 2326 12.37, when the Session header names none
TEARDOWN_TIMEOUT_S = 2.0  # a loaded camera answers slowly; only a dead one costs this
_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only
READ_SIZE = 256 * 1024


def _insecure_tls_context() -> ssl.SSLContext:
    # Cameras serve RTSPS with self-signed certificates that no CA vouches for, so the
    # certificate is not verified: this protects against eavesdropping, not against an
    # active man in the middle.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def status_text(response: RtspResponse) -> str:
    reason = "".join(c for c in response.reason[:60] if c.isprintable())
    return f"{response.status} {reason}".strip()


@dataclass(frozen=True)
class SessionHeader:
    id: str
    timeout: float


def parse_session_header(value: str) -> SessionHeader:
    """`12345678;timeout=60` -> id and timeout (RFC 2326 12.37)."""
    ident, *params = (part.strip() for part in value.split(";"))
    timeout = DEFAULT_SESSION_TIMEOUT_S
    for param in params:
        key, _, text = param.partition("=")
        if key.strip().lower() == "timeout":
            with contextlib.suppress(ValueError):
                timeout = max(float(text), 2.0)  # never a keepalive storm
    return SessionHeader(ident, timeout)


def parse_transport(value: str) -> dict[str, str]:
    """The parameters of the first transport spec in a Transport header."""
    spec = value.split(",")[0]
    params: dict[str, str] = {}
    for part in spec.split(";")[1:]:
        key, _, text = part.strip().partition("=")
        params[key.strip().lower()] = text.strip()
    return params


# --- the control connection ----------------------------------------------------------


class RtspControl:
    """One RTSP control connection: requests out; responses, interleaved frames and
    server requests in, read by one task so frames may arrive at any time (some
    cameras start sending before the PLAY response)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        auth: Authenticator | None,
        timeout: float,
        on_frame: Callable[[InterleavedFrame], None],
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._auth = auth
        self._timeout = timeout
        self._on_frame = on_frame
        self._cseq = 0
        self._pending: dict[int, asyncio.Future[RtspResponse]] = {}
        self.session: str | None = None
        self.failure: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._read_loop(), name="rtsp-read")

    @property
    def alive(self) -> bool:
        return not self.failure.done() and not self._writer.is_closing()

    @property
    def peer(self) -> tuple[str, int]:
        name = self._writer.get_extra_info("peername")
        return name[0], name[1]

    @property
    def family(self) -> int:
        sock = self._writer.get_extra_info("socket")
        return sock.family if sock is not None else socket.AF_INET

    def fail(self, exc: BaseException) -> None:
        """End the connection's useful life: run() raises `exc`."""
        if not self.failure.done():
            self.failure.set_exception(exc)
            self.failure.exception()  # mark retrieved: not every path awaits it
        for future in self._pending.values():
            if not future.done():
                future.set_exception(exc)
        self._pending.clear()

    async def request(
        self, method: str, uri: str, headers: Iterable[tuple[str, str]] = ()
    ) -> RtspResponse:
        """Send a request and return the response, answering one 401 with credentials."""
        headers = list(headers)
        response = await self.exchange(method, uri, headers)
        if response.status == 401:
            self._accept_challenge(response)
            response = await self.exchange(method, uri, headers)
            if response.status == 401:
                raise SourceError("the camera rejected the user name or password (401)")
        return response

    def _accept_challenge(self, response: RtspResponse) -> None:
        if self._auth is None:
            raise SourceError("the camera requires a user name and password (401)")
        if not self._auth.update(response.headers.get_all("WWW-Authenticate")):
            raise SourceError("the camera asks for an authentication scheme camgate lacks")

    async def exchange(
        self,
        method: str,
        uri: str,
        headers: Iterable[tuple[str, str]] = (),
        timeout: float | None = None,
    ) -> RtspResponse:
        """One request, one response, no retries."""
        cseq = self.send(method, uri, headers)
        future = asyncio.get_running_loop().create_future()
        self._pending[cseq] = future
        try:
            await asyncio.wait_for(self._writer.drain(), self._timeout)
            return await asyncio.wait_for(future, timeout or self._timeout)
        except TimeoutError:  # before OSError, of which it is a subclass
            wait = timeout or self._timeout
            raise SourceError(f"no answer within {wait:g} s (to {method})") from None
        except OSError as exc:
            raise SourceError(f"connection to the camera lost: {exc.strerror or exc}") from None
        finally:
            self._pending.pop(cseq, None)

    def send(self, method: str, uri: str, headers: Iterable[tuple[str, str]] = ()) -> int:
        """Write a request without waiting for its answer; returns its CSeq."""
        if self.failure.done():
            self.failure.result()  # raises why the connection ended
        self._cseq += 1
        extra = list(headers)
        authorization = self._auth.authorization(method, uri) if self._auth else None
        if authorization is not None:
            extra.append(("Authorization", authorization))
        data = build_request(method, uri, self._cseq, extra, session=self.session)
        self._write(data)
        return self._cseq

    def send_interleaved(self, channel: int, data: bytes) -> None:
        if self.alive:
            self._write(build_interleaved(channel, data))

    def _write(self, data: bytes) -> None:
        self._writer.write(data)
        # Sending on a connection that mostly receives puts Linux into delayed-ACK
        # "ping-pong" mode: the camera then waits ~40 ms for our ACKs and every RTCP
        # report (5 s) became a 43 ms hiccup in the video. Ask for immediate ACKs again.
        sock = self._writer.get_extra_info("socket")
        if sock is not None and _TCP_QUICKACK is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)

    async def _read_loop(self) -> None:
        parser = RtspStreamParser()
        try:
            while True:
                data = await self._reader.read(READ_SIZE)
                if not data:
                    raise SourceError("the camera closed the connection")
                for message in parser.feed(data):
                    self._dispatch(message)
        except SourceError as exc:
            self.fail(exc)
        except ValueError as exc:  # the parser's verdict on the byte stream
            self.fail(SourceError(f"the camera sent a broken RTSP stream: {exc}"))
        except OSError as exc:  # ssl.SSLError included
            self.fail(SourceError(f"connection to the camera lost: {exc.strerror or exc}"))
        except Exception as exc:  # a bug (e.g. in emit): surfaced by run()
            self.fail(exc)

    def _dispatch(self, message: RtspMessage) -> None:
        if isinstance(message, InterleavedFrame):
            self._on_frame(message)
        elif isinstance(message, RtspResponse):
            self._on_response(message)
        else:
            self._on_server_request(message)

    def _on_response(self, response: RtspResponse) -> None:
        cseq = response.cseq
        if cseq is None and self._pending:  # a firmware that forgets CSeq: oldest first
            cseq = min(self._pending)
        future = self._pending.pop(cseq, None) if cseq is not None else None
        if future is not None and not future.done():
            future.set_result(response)

    def _on_server_request(self, request: RtspRequest) -> None:
        # Some servers ping the client (OPTIONS, GET_PARAMETER); anything else we
        # cannot act on, and saying so keeps the server from waiting.
        ok = request.method in ("OPTIONS", "GET_PARAMETER")
        status, reason = (200, "OK") if ok else (501, "Not Implemented")
        log.debug("server sent %s; answering %d", request.method, status)
        self._write(build_response(status, reason, request.cseq, self.session))

    async def close(self) -> None:
        # Synchronous part first: even if we are cancelled again below, nothing leaks.
        self._task.cancel()
        self._writer.close()
        await asyncio.wait([self._task], timeout=TEARDOWN_TIMEOUT_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer.wait_closed(), TEARDOWN_TIMEOUT_S)


async def open_control(
    url: RtspUrl, timeout: float, on_frame: Callable[[InterleavedFrame], None]
) -> RtspControl:
    """An RTSP connection to `url` (TLS for rtsps://), authenticating as its user; every
    failure a SourceError whose message is safe to show."""
    tls = _insecure_tls_context() if url.tls else None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                url.host, url.port, ssl=tls, server_hostname=url.host if tls else None
            ),
            timeout,
        )
    except TimeoutError:
        raise SourceError(f"no answer from {url.netloc} within {timeout:g} s") from None
    except socket.gaierror:  # its errno is a resolver code: "Unknown error -3"
        raise SourceError(f"cannot resolve {url.host}") from None
    except OSError as exc:
        # asyncio's strerror repeats the address ("Connect call failed ('h', p)"):
        # the errno's own text ("Connection refused") is what a user needs.
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise SourceError(f"cannot connect to {url.netloc}: {reason}") from None
    auth = Authenticator(url.username, url.password or "") if url.username else None
    return RtspControl(reader, writer, auth, timeout, on_frame)


def is_redirect(response: RtspResponse) -> bool:
    """A 3xx: the camera sends the client elsewhere (redirect_target says where)."""
    return 300 <= response.status < 400


def redirect_target(url: RtspUrl, response: RtspResponse) -> RtspUrl:
    """Where a 3xx response sends the client: its Location (an rtsp:// URL), with
    `url`'s credentials if it names the same host and none of its own."""
    location = response.headers.get("Location")
    if not location:
        raise SourceError(f"the camera redirected without a Location ({status_text(response)})")
    try:
        return url.with_location(location)
    except ValueError:
        raise SourceError("the camera redirected to a URL that is not rtsp://") from None

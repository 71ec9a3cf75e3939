"""An RTSP server that only redirects: every request is answered `302 Moved Temporarily`
with `Location: <target>`, as a camera does that moved its stream (or a load balancer in
front of cameras). It keeps the requests it got, for the test to look at."""

from __future__ import annotations

import asyncio
import contextlib

from tests.rig.net import free_port


class RtspRedirector:
    def __init__(self, target: str, host: str = "127.0.0.1") -> None:
        self.target = target
        self.host = host
        self.port = free_port(host)
        self.requests: list[tuple[str, dict[str, str]]] = []  # (request line, headers)
        self._server: asyncio.Server | None = None

    def url(self, path: str = "/moved") -> str:
        return f"rtsp://{self.host}:{self.port}{path}"

    async def __aenter__(self) -> RtspRedirector:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                line, *fields = head.decode("latin-1").split("\r\n")
                headers = {}
                for field in fields:
                    name, _, value = field.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                self.requests.append((line, headers))
                writer.write(
                    f"RTSP/1.0 302 Moved Temporarily\r\nCSeq: {headers.get('cseq', '0')}\r\n"
                    f"Location: {self.target}\r\n\r\n".encode()
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

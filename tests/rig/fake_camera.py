"""A scripted RTSP camera for the quirks (and breakage) a well-behaved server never shows.

It answers RTSP over TCP like a camera, streams tiny synthetic H.264 over interleaved RTP,
and can misbehave on request: redirects, odd channels, garbage, stalls, junk NAL units.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import struct
from dataclasses import dataclass, field

from gateway.rtsp.message import (
    InterleavedFrame,
    RtspRequest,
    RtspStreamParser,
    build_interleaved,
)

FAKE_SDP = (
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=fake\r\nt=0 0\r\na=control:*\r\n"
    "m=video 0 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n"
    "a=fmtp:97 packetization-mode=1;sprop-parameter-sets=Z0IAHpWoKA9k,aM48gA==\r\n"
    "a=control:trackID=1\r\n"
)


def rtp(seq: int, ts: int, payload: bytes, marker: bool, pt: int = 97) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq, ts, 1234) + payload


IDR = bytes([0x65, 0x88]) + b"\x11" * 50  # first_mb_in_slice 0
SLICE = bytes([0x41, 0x9A]) + b"\x22" * 30


@dataclass
class FakeCamera:
    """Answers RTSP like a camera would, with a script of quirks; streams over TCP."""

    sdp: str = FAKE_SDP
    redirect_from: str | None = None  # a path that answers 302 to /real
    garbage_after_play: bool = False
    junk_nals: bool = False  # well-framed RTP carrying random, broken NAL units
    frames: int = 200
    stream: bool = True
    session_timeout: int = 30
    requests: list[RtspRequest] = field(default_factory=list)
    client_frames: list[InterleavedFrame] = field(default_factory=list)
    keepalive_seen: asyncio.Event = field(default_factory=asyncio.Event)
    report_seen: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    tls: ssl.SSLContext | None = None

    async def __aenter__(self) -> FakeCamera:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        self._server.close()
        await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = RtspStreamParser()
        try:
            while data := await reader.read(65536):
                for message in parser.feed(data):
                    if isinstance(message, RtspRequest):
                        self.requests.append(message)
                        await self._answer(message, writer)
                    elif isinstance(message, InterleavedFrame):
                        self.client_frames.append(message)
                        self.report_seen.set()
        except (ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    def _reply(self, writer: asyncio.StreamWriter, request: RtspRequest, status: str,
               headers: str = "", body: bytes = b"") -> None:  # fmt: skip
        length = f"Content-Length: {len(body)}\r\n" if body else ""
        head = f"RTSP/1.0 {status}\r\nCSeq: {request.cseq}\r\n{headers}{length}\r\n"
        writer.write(head.encode() + body)

    async def _answer(self, request: RtspRequest, writer: asyncio.StreamWriter) -> None:
        if self.redirect_from and request.uri.endswith(self.redirect_from):
            location = f"rtsp://127.0.0.1:{self.port}/real"
            self._reply(writer, request, "302 Moved", f"Location: {location}\r\n")
        elif request.method == "OPTIONS":
            public = "OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN"
            self._reply(writer, request, "200 OK", f"Public: {public}\r\n")
        elif request.method == "GET_PARAMETER":
            self.keepalive_seen.set()
            self._reply(writer, request, "200 OK", "Session: F00D\r\n")
        elif request.method == "DESCRIBE":
            base = request.uri.rstrip("/") + "/"
            headers = f"Content-Base: {base}\r\nContent-Type: application/sdp\r\n"
            self._reply(writer, request, "200 OK", headers, self.sdp.encode())
        elif request.method == "SETUP":
            # answer with other channels than asked for, as some cameras do
            session = f"Session: F00D;timeout={self.session_timeout}\r\n"
            transport = "Transport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n"
            self._reply(writer, request, "200 OK", session + transport)
        elif request.method == "PLAY":
            writer.write(build_interleaved(2, rtp(1, 0, IDR, True)))  # before the answer
            self._reply(writer, request, "200 OK", "Session: F00D\r\n")
            if self.stream:
                self._tasks.add(asyncio.create_task(self._stream(writer)))
        elif request.method == "TEARDOWN":
            self._reply(writer, request, "200 OK")
        await writer.drain()

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        # a server request and foreign channels in the middle of the media: all ignored
        writer.write(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n")
        writer.write(build_interleaved(3, b"\x80\xc8\x00\x06" + b"\x00" * 24))  # RTCP SR
        writer.write(build_interleaved(6, b"\x80\x08\x00\x01audio"))
        junk = random.Random(7)
        for i in range(2, self.frames):
            ts = i * 3000
            if self.junk_nals:
                first = bytes([junk.choice([0x65, 0x67, 0x68, 0x41, 0x06, 0x7C, 0x78])])
                second = bytes([0x67]) + junk.randbytes(junk.randint(0, 40))
                writer.write(
                    build_interleaved(2, rtp(2 * i, ts, first + junk.randbytes(30), False))
                )
                writer.write(build_interleaved(2, rtp(2 * i + 1, ts, second, True)))
            else:
                writer.write(build_interleaved(2, rtp(2 * i, ts, SLICE[:20], False)))
                writer.write(build_interleaved(2, rtp(2 * i + 1, ts, bytes([0x41, 0x9A, 1]), True)))
            if self.garbage_after_play and i == 5:
                writer.write(b"\x17\x03\x03 definitely not RTSP")
            await writer.drain()
            await asyncio.sleep(0.01)

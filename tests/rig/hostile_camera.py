"""A malicious RTSP camera for the attack suite: FakeCamera's RTSP, with one hostile
behaviour chosen per instance. It speaks just enough RTSP for camgate's client to reach
PLAY (where the behaviour allows), then attacks the gateway's memory or its parsers.

`armed` holds the attack back until the test has measured what it needs to (the stream
then sends nothing); it is set from the start unless the test clears it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from enum import StrEnum

from gateway.rtsp.message import RtspRequest, build_interleaved
from tests.rig.fake_camera import FAKE_SDP, IDR, FakeCamera, rtp

# An SPS announcing 65535x65535 pictures (4:4:4, 4096 macroblocks a side cropped by a
# pixel): well-formed, absurd. Hex 67f40028919b28002000001000f548.
ABSURD_SPS_B64 = "Z/QAKJGbKAAgAAAQAPVI"
ABSURD_SPS = bytes.fromhex("67f40028919b28002000001000f548")
HUGE_SLICE_BYTES = 60_000  # one RTP packet each: an interleaved frame holds up to 64 KB


class Hostility(StrEnum):
    HUGE_PICTURE = "huge_picture"  # 60 KB slices, one timestamp, never a marker bit
    ENDLESS_FU_A = "endless_fu_a"  # one FU-A start, then middle fragments forever
    GIANT_SDP = "giant_sdp"  # a DESCRIBE answer with a 2 MB SDP
    HUGE_HEADERS = "huge_headers"  # an OPTIONS answer with 100 KB of headers
    ABSURD_SPS = "absurd_sps"  # sprop-parameter-sets and in-band SPS of 65535x65535
    SILENT = "silent"  # accepts the connection, reads, never answers
    WILD_SEQUENCE = "wild_sequence"  # well-formed pictures with random sequence numbers
    CHANNEL_FLOOD = "channel_flood"  # 64 KB frames on channels nobody set up
    ENDLESS_GOP = "endless_gop"  # one IDR, then 500 KB pictures and never another IDR


@dataclass
class HostileCamera(FakeCamera):
    behaviour: Hostility = Hostility.HUGE_PICTURE
    armed: asyncio.Event = field(default_factory=asyncio.Event)
    connections: int = 0
    packets_sent: int = 0
    bytes_sent: int = 0

    def __post_init__(self) -> None:
        self.armed.set()
        if self.behaviour is Hostility.ABSURD_SPS:
            self.sdp = FAKE_SDP.replace("Z0IAHpWoKA9k", ABSURD_SPS_B64)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.behaviour is Hostility.SILENT:
            try:
                while await reader.read(65536):
                    pass  # heard, never answered
            except ConnectionError:
                pass
            finally:
                writer.close()
            return
        await super()._client(reader, writer)

    async def _answer(self, request: RtspRequest, writer: asyncio.StreamWriter) -> None:
        if self.behaviour is Hostility.HUGE_HEADERS and request.method == "OPTIONS":
            padding = "".join(f"X-Padding-{i}: {'x' * 90}\r\n" for i in range(1100))
            self._reply(writer, request, "200 OK", padding)
            await writer.drain()
        elif self.behaviour is Hostility.GIANT_SDP and request.method == "DESCRIBE":
            body = self.sdp.encode() + b"a=x-junk:" + b"y" * (2 * 1024 * 1024) + b"\r\n"
            self._reply(writer, request, "200 OK", "Content-Type: application/sdp\r\n", body)
            await writer.drain()
        else:
            await super()._answer(request, writer)

    def _send(self, writer: asyncio.StreamWriter, channel: int, packet: bytes) -> None:
        writer.write(build_interleaved(channel, packet))
        self.packets_sent += 1
        self.bytes_sent += len(packet)

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        await self.armed.wait()
        attack = {
            Hostility.HUGE_PICTURE: self._huge_picture,
            Hostility.ENDLESS_FU_A: self._endless_fu_a,
            Hostility.ABSURD_SPS: self._absurd_sps,
            Hostility.WILD_SEQUENCE: self._wild_sequence,
            Hostility.CHANNEL_FLOOD: self._channel_flood,
            Hostility.ENDLESS_GOP: self._endless_gop,
        }.get(self.behaviour)
        if attack is None:
            await super()._stream(writer)
            return
        with contextlib.suppress(ConnectionError):  # the gateway hung up: attack noticed
            await attack(writer)

    async def _huge_picture(self, writer: asyncio.StreamWriter) -> None:
        piece = bytes([0x41, 0x9A]) + random.Random(1).randbytes(HUGE_SLICE_BYTES)
        seq = 2
        while True:
            self._send(writer, 2, rtp(seq & 0xFFFF, 90_000, piece, False))
            seq += 1
            await writer.drain()

    async def _endless_fu_a(self, writer: asyncio.StreamWriter) -> None:
        chunk = bytes(1400)
        self._send(writer, 2, rtp(2, 90_000, bytes([0x7C, 0x85]) + chunk, False))
        seq = 3
        while True:
            self._send(writer, 2, rtp(seq & 0xFFFF, 90_000, bytes([0x7C, 0x05]) + chunk, False))
            seq += 1
            if seq % 32 == 0:
                await writer.drain()

    async def _absurd_sps(self, writer: asyncio.StreamWriter) -> None:
        for i in range(2, self.frames):
            self._send(writer, 2, rtp(2 * i, i * 3000, ABSURD_SPS, False))
            self._send(writer, 2, rtp(2 * i + 1, i * 3000, IDR, True))
            await writer.drain()
            await asyncio.sleep(0.01)

    async def _wild_sequence(self, writer: asyncio.StreamWriter) -> None:
        chaos = random.Random(5)
        for i in range(2, 100_000):
            self._send(writer, 2, rtp(chaos.randrange(1 << 16), i * 3000, IDR, True))
            if i % 64 == 0:
                await writer.drain()
                await asyncio.sleep(0)

    async def _channel_flood(self, writer: asyncio.StreamWriter) -> None:
        junk = bytes(0xFFFF)
        for i in range(2, 100_000):
            for channel in (0, 1, 4, 5, 200, 255):
                self._send(writer, channel, junk)
            self._send(writer, 2, rtp(i, i * 3000, IDR, True))  # the real stream goes on
            await writer.drain()

    async def _endless_gop(self, writer: asyncio.StreamWriter) -> None:
        body = random.Random(3).randbytes(500_000)
        seq = 2
        for n in range(2, 1_000_000):
            fragments = [
                body[i : i + HUGE_SLICE_BYTES] for i in range(0, len(body), HUGE_SLICE_BYTES)
            ]
            for i, fragment in enumerate(fragments):
                start, end = (0x80 if i == 0 else 0), (0x40 if i == len(fragments) - 1 else 0)
                payload = bytes([0x5C, start | end | 1, 0x9A]) + fragment  # FU-A of a P slice
                self._send(writer, 2, rtp(seq & 0xFFFF, n * 3000, payload, bool(end)))
                seq += 1
            await writer.drain()

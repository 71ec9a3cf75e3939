"""A scripted camera with an audio track the GStreamer server can't fake: a codec camgate
refuses (G.726), a SETUP of the audio track that fails, or hostile audio RTP."""

from __future__ import annotations

import asyncio
import random
import struct
from dataclasses import dataclass

from gateway.rtsp.message import RtspRequest, build_interleaved
from tests.rig.fake_camera import FAKE_SDP, SLICE, FakeCamera, rtp

G726_SDP = FAKE_SDP + (
    "m=audio 0 RTP/AVP 98\r\na=rtpmap:98 G726-32/8000\r\na=control:trackID=2\r\n"
)
PCMA_SDP = FAKE_SDP + "m=audio 0 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=control:trackID=2\r\n"
# sizelength=16: AU sizes up to 64 KiB can be claimed, past camgate's cap.
AAC_SDP = FAKE_SDP + (
    "m=audio 0 RTP/AVP 98\r\na=rtpmap:98 MPEG4-GENERIC/16000/1\r\n"
    "a=fmtp:98 streamtype=5;mode=AAC-hbr;config=1408;sizelength=16;indexlength=0;"
    "indexdeltalength=0\r\na=control:trackID=2\r\n"
)
AUDIO_CHANNEL = 4  # what the camera answers for the audio SETUP


def aac_packet(seq: int, ts: int, sizes: list[int], data: bytes, marker: bool = True) -> bytes:
    headers = b"".join(struct.pack("!H", size) for size in sizes)
    payload = struct.pack("!H", 16 * len(sizes)) + headers + data
    return rtp(seq, ts, payload, marker, pt=98)


@dataclass
class AudioCamera(FakeCamera):
    """FakeCamera with an audio section: `refuse_audio` answers its SETUP with 403;
    `hostile_audio` streams garbage (and some good AAC) on the audio channel."""

    refuse_audio: bool = False
    hostile_audio: bool = False
    good_audio_packets: int = 0

    async def _answer(self, request: RtspRequest, writer: asyncio.StreamWriter) -> None:
        if request.method == "SETUP" and request.uri.endswith("trackID=2"):
            if self.refuse_audio:
                self._reply(writer, request, "403 Forbidden", "Session: F00D\r\n")
            else:
                channels = f"interleaved={AUDIO_CHANNEL}-{AUDIO_CHANNEL + 1}"
                transport = f"Transport: RTP/AVP/TCP;unicast;{channels}\r\n"
                self._reply(writer, request, "200 OK", "Session: F00D\r\n" + transport)
            await writer.drain()
            return
        await super()._answer(request, writer)

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        if not self.hostile_audio:
            await super()._stream(writer)
            return
        junk = random.Random(17)
        for i in range(2, self.frames):
            ts = i * 3000
            writer.write(build_interleaved(2, rtp(2 * i, ts, SLICE[:20], False)))
            writer.write(build_interleaved(2, rtp(2 * i + 1, ts, bytes([0x41, 0x9A, 1]), True)))
            for packet in self._hostile(i, junk):
                writer.write(build_interleaved(AUDIO_CHANNEL, packet))
            await writer.drain()
            await asyncio.sleep(0.01)

    def _hostile(self, i: int, junk: random.Random) -> list[bytes]:
        ts = i * 1024
        seq = 6 * i
        packets = [
            junk.randbytes(junk.randint(0, 40)),  # not even RTP
            b"\x80\x62\x00",  # truncated header
            rtp(10_000 + i, ts, b"\x00\x10\x00\x04abcd", True, pt=0),  # the wrong type
            aac_packet(seq, ts, [60_000], b"x" * 900, marker=False),  # a giant AU
            rtp(seq + 1, ts, struct.pack("!H", 0xFFFF) + b"\x01", True, pt=98),  # past the end
            # a frame whose fragments run past the size its header claimed
            aac_packet(seq + 2, ts, [1000], b"y" * 600, marker=False),
            aac_packet(seq + 3, ts, [1000], b"y" * 600, marker=False),
            aac_packet(seq + 4, ts + 512, [4], b"good"),
        ]
        self.good_audio_packets += 1
        return packets

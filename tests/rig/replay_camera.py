"""An RTSP camera that streams real H.264 (encoded here with PyAV's libx264) and can break
it on purpose: a resolution change mid-stream, truncated RTP packets. RTSP handling is
FakeCamera's; only the media differs."""

from __future__ import annotations

import asyncio
import fractions
import random
from dataclasses import dataclass, field

import av

from gateway.media.h264 import split_annexb
from gateway.rtsp.message import build_interleaved
from tests.rig.fake_camera import FakeCamera, rtp

REPLAY_SDP = (
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=replay\r\nt=0 0\r\na=control:*\r\n"
    "m=video 0 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n"
    "a=fmtp:97 packetization-mode=1\r\na=control:trackID=1\r\n"
)
MTU_PAYLOAD = 1200
FPS = 30


def encode_pictures(width: int, height: int, frames: int, gop: int) -> list[list[bytes]]:
    """NAL units of each picture of a moving test pattern (SPS/PPS before every IDR)."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = fractions.Fraction(1, FPS)
    ctx.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:repeat-headers=1",
        "threads": "1",
    }
    pattern = av.open(f"testsrc2=size={width}x{height}:rate={FPS}", format="lavfi")
    pictures = []
    try:
        for n, frame in enumerate(pattern.decode(video=0)):
            if n >= frames:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts = n
            frame.pict_type = av.video.frame.PictureType.NONE
            for packet in ctx.encode(frame):
                pictures.append(split_annexb(bytes(packet)))
        for packet in ctx.encode(None):
            pictures.append(split_annexb(bytes(packet)))
    finally:
        pattern.close()
    return pictures


def packetize(nal: bytes) -> list[bytes]:
    """RTP payloads for one NAL unit: as is, or FU-A fragments (RFC 6184)."""
    if len(nal) <= MTU_PAYLOAD:
        return [nal]
    header, body = nal[0], nal[1:]
    indicator = (header & 0xE0) | 28
    chunks = [body[i : i + MTU_PAYLOAD] for i in range(0, len(body), MTU_PAYLOAD)]
    payloads = []
    for i, chunk in enumerate(chunks):
        start, end = 0x80 if i == 0 else 0, 0x40 if i == len(chunks) - 1 else 0
        payloads.append(bytes([indicator, start | end | (header & 0x1F)]) + chunk)
    return payloads


@dataclass
class ReplayCamera(FakeCamera):
    """`segments`: picture lists played one after the other, then looped."""

    sdp: str = REPLAY_SDP
    segments: list[list[list[bytes]]] = field(default_factory=list)
    truncate_every: int = 0  # every Nth RTP packet is cut short (0: never)
    packets_sent: int = 0
    truncated: int = 0
    pictures_sent: int = 0

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        chop = random.Random(11)
        seq, n = 2, 1
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            for segment in self.segments:
                for picture in segment:
                    payloads = [p for nal in picture for p in packetize(nal)]
                    for i, payload in enumerate(payloads):
                        packet = rtp(seq & 0xFFFF, n * 3000, payload, i == len(payloads) - 1)
                        seq += 1
                        self.packets_sent += 1
                        if self.truncate_every and self.packets_sent % self.truncate_every == 0:
                            packet = packet[: chop.randrange(len(packet))]
                            self.truncated += 1
                        writer.write(build_interleaved(2, packet))
                    self.pictures_sent += 1
                    n += 1
                    await writer.drain()
                    await asyncio.sleep(max(0.0, start + n / FPS - loop.time()))

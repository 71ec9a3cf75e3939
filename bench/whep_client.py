"""A non-decoding WHEP viewer: an aiortc peer whose receiver counts frames instead of
decoding them (its `_handle_rtp_packet` is replaced, so nothing reaches the decoder)."""

from __future__ import annotations

import contextlib
from urllib.parse import urljoin

import aiohttp
import aioice.ice
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.rtp import RtpPacket

from bench.framecount import FrameCounter


def use_loopback_candidates() -> None:
    """aioice skips loopback when gathering; in the benchmark's namespace it is all there is."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


class WhepViewer:
    def __init__(self, http: aiohttp.ClientSession, whep_url: str) -> None:
        self._http = http
        self._whep_url = whep_url
        self._location: str | None = None
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.counter = FrameCounter()

    async def connect(self) -> None:
        """Offer (non-trickle: aiortc gathers before setLocalDescription returns), POST it,
        apply the answer."""
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        capabilities = RTCRtpReceiver.getCapabilities("video")
        assert capabilities is not None
        transceiver.setCodecPreferences(
            [c for c in capabilities.codecs if c.mimeType == "video/H264"]
        )

        async def handle_rtp(packet: RtpPacket, arrival_time_ms: int) -> None:
            self.counter.on_packet(packet)

        transceiver.receiver._handle_rtp_packet = handle_rtp  # type: ignore[method-assign]
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = self.pc.localDescription.sdp
        async with self._http.post(
            self._whep_url, data=offer, headers={"Content-Type": "application/sdp"}
        ) as response:
            answer = await response.text()
            if response.status != 201:
                raise RuntimeError(f"WHEP POST: {response.status} {answer[:200]}")
            self._location = urljoin(self._whep_url, response.headers["Location"])
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    @property
    def receiving(self) -> bool:
        return self.counter.first_complete_ns is not None

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.pc.close()
        if self._location is not None:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self._http.delete(self._location):
                    pass

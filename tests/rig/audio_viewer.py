"""A WHEP viewer (tests/rig/whep_client.py) that also asks for the camera's audio: it
keeps every audio RTP packet as it arrived (payload bytes, RTP timestamp, marker) and
the RTCP sender reports of both streams, for passthrough and A/V sync checks."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender
from aiortc.rtp import RtcpSrPacket, RtpPacket

from tests.rig.whep_client import WhepViewer, _CountingQueue


@dataclass(frozen=True)
class AudioRecord:
    at: float
    timestamp: int
    marker: bool
    payload: bytes


@dataclass(frozen=True)
class SenderReport:
    ntp: int  # 64-bit NTP
    rtp: int

    def seconds_of(self, rtp_timestamp: int, clock_rate: int) -> float:
        """The NTP time (s) this report maps `rtp_timestamp` to."""
        delta = (rtp_timestamp - self.rtp + (1 << 31)) % (1 << 32) - (1 << 31)
        return self.ntp / (1 << 32) + delta / clock_rate


class AudioWhepViewer(WhepViewer):
    def __init__(
        self,
        *args: Any,
        audio_codecs: tuple[str, ...] = (),
        decode_audio: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.decode_audio = decode_audio  # False: aiortc's audio decoder gets nothing (bench)
        self.audio_codecs = audio_codecs  # e.g. ("audio/PCMU",): offer only these
        self.audio: list[AudioRecord] = []
        self.audio_reports: list[SenderReport] = []
        self.video_reports: list[SenderReport] = []
        self.audio_receiver: RTCRtpReceiver | None = None

    async def start(self, timeout: float = 20.0) -> AudioWhepViewer:
        transceiver = self.pc.addTransceiver("audio", direction="recvonly")
        if self.audio_codecs:
            wanted = {c.lower() for c in self.audio_codecs}
            transceiver.setCodecPreferences(
                [
                    c
                    for c in RTCRtpSender.getCapabilities("audio").codecs
                    if c.mimeType.lower() in wanted
                ]
            )
        self.audio_receiver = transceiver.receiver
        self._keep_audio(transceiver.receiver)
        if not self.decode_audio:
            # Name-mangled private of aiortc's RTCRtpReceiver, as WhepViewer's video hook.
            transceiver.receiver._RTCRtpReceiver__decoder_queue = _CountingQueue(  # type: ignore[attr-defined]
                lambda _frame: None
            )
        self._keep_reports(transceiver.receiver, self.audio_reports)
        await super().start(timeout)
        video = next(t for t in self.pc.getTransceivers() if t.kind == "video")
        self._keep_reports(video.receiver, self.video_reports)
        return self

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            super()._on_track(track)

    async def wait_audio(self, packets: int, timeout: float = 30.0) -> None:
        await self._wait(lambda: len(self.audio) >= packets, timeout, f"{packets} audio packets")

    async def wait_reports(self, timeout: float = 30.0) -> None:
        await self._wait(
            lambda: bool(self.audio_reports and self.video_reports), timeout, "sender reports"
        )

    def answer_audio_direction(self) -> str | None:
        """The a=sendonly/inactive/... of the answer's audio m-line."""
        assert self.answer_sdp is not None
        section = self.answer_sdp.split("m=audio", 1)
        if len(section) < 2:
            return None
        body = section[1].split("\nm=", 1)[0]
        for direction in ("sendrecv", "sendonly", "recvonly", "inactive"):
            if f"a={direction}" in body:
                return direction
        return None

    def _keep_audio(self, receiver: RTCRtpReceiver) -> None:
        handle_rtp: Callable[[RtpPacket, int], Awaitable[None]] = receiver._handle_rtp_packet

        async def keeping(packet: RtpPacket, arrival_time_ms: int) -> None:
            record = AudioRecord(
                time.monotonic(), packet.timestamp, bool(packet.marker), packet.payload
            )
            self.audio.append(record)
            self._progress.set()
            await handle_rtp(packet, arrival_time_ms)

        receiver._handle_rtp_packet = keeping  # type: ignore[method-assign]

    def _keep_reports(self, receiver: RTCRtpReceiver, reports: list[SenderReport]) -> None:
        handle_rtcp = receiver._handle_rtcp_packet

        async def keeping(packet: Any) -> None:
            if isinstance(packet, RtcpSrPacket):
                info = packet.sender_info
                reports.append(SenderReport(info.ntp_timestamp, info.rtp_timestamp))
                self._progress.set()
            await handle_rtcp(packet)

        receiver._handle_rtcp_packet = keeping  # type: ignore[method-assign]


def decode_audio(codec: str, payloads: list[bytes], sample_rate: int) -> list[list[int]]:
    """Each payload decoded on its own (in order, one decoder): its mono s16 samples."""
    decoder = av.CodecContext.create(codec, "r")
    decoder.sample_rate = sample_rate
    decoder.layout = "mono"
    resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
    out: list[list[int]] = []
    for payload in payloads:
        packet = av.Packet(payload)
        packet.time_base = Fraction(1, sample_rate)
        samples: list[int] = []
        for frame in decoder.decode(packet):
            for frame_s16 in resampler.resample(frame):
                data = bytes(frame_s16.planes[0])[: frame_s16.samples * 2]
                samples += list(memoryview(data).cast("h"))
        out.append(samples)
    return out


def peak(samples: list[int]) -> int:
    return max((abs(s) for s in samples), default=0)

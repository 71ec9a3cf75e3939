"""An aiortc WHEP viewer for tests and benchmarks, decoding or not.

decode=False counts whole frames without decoding them, so many viewers fit on 2 cores:
aiortc's receiver hands each reassembled frame to its decoder thread through a
queue.Queue (RTCRtpReceiver.__decoder_queue); we swap that queue for one that counts
and drops (the decoder thread then idles until close). A frame there is what aiortc's
jitter buffer emits: the packets of one RTP timestamp, released when the next timestamp
begins. Its arrival time is taken from its last packet (a hook on _handle_rtp_packet),
so latency figures are not one frame late. Written against aiortc 1.16 (pyproject pins
aiortc < 1.17).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import queue
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket
from yarl import URL

from tests.rig.ice import loopback_candidates

START_TIMEOUT_S = 20.0
CLOSE_TIMEOUT_S = 10.0  # teardown is bounded: a dead gateway must not hang a test
_ARRIVALS_KEPT = 256
IDR = 5


@dataclass(frozen=True)
class FrameRecord:
    at: float  # time.monotonic() when the frame was complete
    timestamp: int  # decode=False: the RTP timestamp; decode=True: the frame's pts
    width: int | None = None  # decode=True only
    height: int | None = None
    keyframe: bool | None = None  # decode=False only: contains an IDR slice
    size: int | None = None  # decode=False only: Annex-B bytes


@dataclass(frozen=True)
class EncodedRecord:
    """A frame as the receiver's jitter buffer released it (keep_encoded=True)."""

    at: float
    rtp_timestamp: int
    data: bytes  # Annex-B, as depacketized


class WhepError(RuntimeError):
    pass


class _CountingQueue(queue.Queue[Any]):
    """Stands in for the receiver's decoder queue: frames go to `on_frame`, not a decoder.

    put() is called on the event loop (from _handle_rtp_packet); the decoder thread
    only ever sees the None that stops it."""

    def __init__(self, on_frame: Callable[[JitterFrame], None]) -> None:
        super().__init__()
        self._on_frame = on_frame

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(item, block, timeout)
        else:
            self._on_frame(item[1])  # item is (codec, JitterFrame)


def _has_idr(annexb: bytes) -> bool:
    start = annexb.find(b"\x00\x00\x01")
    while start != -1 and start + 3 < len(annexb):
        if annexb[start + 3] & 0x1F == IDR:
            return True
        start = annexb.find(b"\x00\x00\x01", start + 3)
    return False


class WhepViewer:
    """`await WhepViewer(base_url, camera).start()`, then read frames_received & co."""

    def __init__(
        self,
        base_url: str,
        camera: str,
        decode: bool = False,
        *,
        loopback_only: bool = True,
        http: aiohttp.ClientSession | None = None,
        ptz: bool = False,
        keep_encoded: bool = False,
        query: str = "",
        stream: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.camera = camera
        self.decode = decode
        self.loopback_only = loopback_only
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.location: str | None = None
        self.answer_sdp: str | None = None
        self.frames: list[FrameRecord] = []
        # keep_encoded=True: every frame's bytes, before the decoder (RTP-level checks)
        self.keep_encoded = keep_encoded
        self.encoded: list[EncodedRecord] = []
        self.started_at: float | None = None
        self.rtp_packets = 0
        self.marker_packets = 0
        self.stalled = False
        self._http = http
        self._own_http = http is None
        self._progress = asyncio.Event()
        self._arrivals: dict[int, float] = {}
        self._reader: asyncio.Task[None] | None = None
        self._track: MediaStreamTrack | None = None
        self._receiver: RTCRtpReceiver | None = None
        # ptz=True: a "ptz" data channel, opened like the viewer does (docs/ptz.md).
        self.ptz_channel: RTCDataChannel | None = None
        self.ptz_replies: list[dict[str, Any]] = []  # every reply, in arrival order
        self._ptz_wanted = ptz
        self._ptz_ids = itertools.count(1)
        self._ptz_waiting: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        # query: added to the WHEP POST (e.g. "view=grid"). stream=True: a "stream" data
        # channel (docs/streams.md), its status messages kept in arrival order.
        self.query = query
        self.stream_channel: RTCDataChannel | None = None
        self.stream_messages: list[dict[str, Any]] = []
        self._stream_wanted = stream
        # Every video RTP packet's (sequence number, timestamp, SSRC), in arrival order.
        self.rtp_log: list[tuple[int, int, int]] = []

    # -- results ------------------------------------------------------------------------
    @property
    def frames_received(self) -> int:
        return len(self.frames)

    @property
    def first_frame_at(self) -> float | None:
        return self.frames[0].at if self.frames else None

    @property
    def time_to_first_frame(self) -> float | None:
        """Seconds from start() to the first whole frame."""
        if self.started_at is None or not self.frames:
            return None
        return self.frames[0].at - self.started_at

    @property
    def connection_state(self) -> str:
        return self.pc.connectionState

    @property
    def whep_url(self) -> str:
        url = f"{self.base_url}/api/cameras/{self.camera}/whep"
        return f"{url}?{self.query}" if self.query else url

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self, timeout: float = START_TIMEOUT_S) -> WhepViewer:
        """Offer, POST, answer. Returns once signaling is done (media may still be coming)."""
        self.started_at = time.monotonic()
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        self._receiver = transceiver.receiver
        self._hook_rtp(transceiver.receiver)
        if not self.decode:
            self._hook_decoder_queue(transceiver.receiver)
        elif self.keep_encoded:
            self._hook_jitter_buffer(transceiver.receiver)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._progress.set)
        if self._ptz_wanted:
            self._open_ptz_channel()
        if self._stream_wanted:
            self._open_stream_channel()
        async with asyncio.timeout(timeout):
            offer = await self._local_offer()
            answer = await self._post_offer(offer)
            await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        return self

    async def close(self) -> None:
        """DELETE the WHEP session (if the gateway is still there) and close the peer."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, MediaStreamError):
                await self._reader
        if self.location is not None:
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                timeout = aiohttp.ClientTimeout(total=CLOSE_TIMEOUT_S)
                async with self._session().delete(self.location, timeout=timeout) as response:
                    await response.read()
            self.location = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.pc.close(), CLOSE_TIMEOUT_S)
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> WhepViewer:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # -- waiting ------------------------------------------------------------------------
    async def wait_frames(self, n: int, timeout: float = 10.0) -> float:
        """Wait until `n` frames in total have arrived; returns the n-th's arrival time."""
        await self._wait(lambda: self.frames_received >= n, timeout, f"{n} frames")
        return self.frames[n - 1].at

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await self._wait(lambda: self.pc.connectionState == "connected", timeout, "connected")

    async def _wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not done():
                    if self.pc.connectionState in ("failed", "closed"):
                        raise WhepError(f"waiting for {what}: connection {self.connection_state}")
                    self._progress.clear()
                    await self._progress.wait()  # set by frames and connection changes
        except TimeoutError:
            raise TimeoutError(
                f"no {what} after {timeout} s: {self.frames_received} frames, "
                f"{self.rtp_packets} RTP packets, connection {self.connection_state}"
            ) from None

    # -- PTZ data channel ---------------------------------------------------------------
    async def ptz(self, command: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """Send {"cmd": ..., fields} (v and a fresh id added unless given); the reply."""
        message = {"v": 1, "id": next(self._ptz_ids), **command}
        future = asyncio.get_running_loop().create_future()
        self._ptz_waiting[message["id"]] = future
        await self.ptz_send_raw(json.dumps(message), timeout)
        async with asyncio.timeout(timeout):
            return await future

    async def ptz_send_raw(self, data: str | bytes, timeout: float = 10.0) -> None:
        """Send anything on the channel, once it is open (for fuzzing)."""
        await self.wait_ptz_open(timeout)
        assert self.ptz_channel is not None
        self.ptz_channel.send(data)

    def drop_packets(self, every: int) -> list[int]:
        """Lose every `every`-th media packet on arrival (not retransmissions), as a bad
        network would; returns the list the dropped sequence numbers are added to."""
        receiver = self.pc.getReceivers()[0]
        original = receiver._handle_rtp_packet
        dropped: list[int] = []
        count = 0

        async def lossy(packet: Any, arrival_time_ms: int) -> None:
            nonlocal count
            codec = receiver._RTCRtpReceiver__codecs.get(packet.payload_type)  # type: ignore[attr-defined]
            if codec is not None and codec.mimeType.lower() == "video/h264":
                count += 1
                if count % every == 0:
                    dropped.append(packet.sequence_number)
                    return
            await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = lossy  # type: ignore[method-assign]
        return dropped

    async def send_pli(self) -> None:
        """Report picture loss (RTCP PLI), as a receiver that lost packets does."""
        receiver = self.pc.getReceivers()[0]
        streams = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
        if not streams:
            raise RuntimeError("no media received yet: nothing to report lost")
        await receiver._send_rtcp_pli(next(iter(streams)))

    async def wait_ptz_open(self, timeout: float = 10.0) -> None:
        channel = self.ptz_channel
        if channel is None:
            raise WhepError("this viewer has no ptz channel (WhepViewer(..., ptz=True))")
        await self._wait(lambda: channel.readyState == "open", timeout, "ptz channel open")

    async def wait_ptz_replies(self, n: int, timeout: float = 10.0) -> None:
        await self._wait(lambda: len(self.ptz_replies) >= n, timeout, f"{n} ptz replies")

    def close_ptz(self) -> None:
        """Close the data channel only (the peer connection stays up)."""
        if self.ptz_channel is not None:
            self.ptz_channel.close()

    def _open_ptz_channel(self) -> None:
        channel = self.pc.createDataChannel("ptz", ordered=True)
        channel.on("open", self._progress.set)
        channel.on("close", self._progress.set)
        channel.on("message", self._on_ptz_message)
        self.ptz_channel = channel

    def _on_ptz_message(self, message: str | bytes) -> None:
        reply = json.loads(message)
        self.ptz_replies.append(reply)
        future = self._ptz_waiting.pop(reply.get("id"), None)
        if future is not None and not future.done():
            future.set_result(reply)
        self._progress.set()

    # -- stream data channel -----------------------------------------------------------
    async def wait_stream_open(self, timeout: float = 10.0) -> None:
        channel = self.stream_channel
        if channel is None:
            raise WhepError("this viewer has no stream channel (WhepViewer(..., stream=True))")
        await self._wait(lambda: channel.readyState == "open", timeout, "stream channel open")

    def send_stream(self, message: dict[str, Any] | str | bytes) -> None:
        """A view/pin request (a dict is sent as JSON text; str/bytes as they are)."""
        assert self.stream_channel is not None
        self.stream_channel.send(json.dumps(message) if isinstance(message, dict) else message)

    async def wait_stream_status(
        self, done: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first status message from now on (or the latest one) for which `done`."""
        await self._wait(
            lambda: bool(self.stream_messages) and done(self.stream_messages[-1]),
            timeout,
            "a matching stream status",
        )
        return self.stream_messages[-1]

    def _open_stream_channel(self) -> None:
        channel = self.pc.createDataChannel("stream", ordered=True)
        channel.on("open", self._progress.set)
        channel.on("close", self._progress.set)
        channel.on("message", self._on_stream_message)
        self.stream_channel = channel

    def _on_stream_message(self, message: str | bytes) -> None:
        self.stream_messages.append(json.loads(message))
        self._progress.set()

    # -- stalling -----------------------------------------------------------------------
    def stall(self) -> None:
        """Act stuck: stop reading frames and stop reading the UDP socket, so the kernel
        buffer fills and drops the gateway's packets (UDP never pushes back on the
        sender). ICE consent checks go unanswered too: after ~30 s the gateway may drop us.
        """
        self.stalled = True
        self._set_reading(False)

    def resume(self) -> None:
        """Read again; the gap makes the receiver send NACKs and a PLI."""
        self.stalled = False
        self._set_reading(True)
        self._progress.set()

    def _set_reading(self, on: bool) -> None:
        if self._receiver is None:
            return
        connection = self._receiver.transport.transport.iceGatherer._connection
        for protocol in connection._protocols:
            transport = getattr(protocol, "transport", None)
            if transport is not None:
                (transport.resume_reading if on else transport.pause_reading)()

    # -- internals ----------------------------------------------------------------------
    async def _local_offer(self) -> str:
        # aiortc gathers all candidates inside setLocalDescription (no trickle).
        scope = loopback_candidates() if self.loopback_only else contextlib.nullcontext()
        with scope:
            await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def _post_offer(self, offer: str) -> str:
        headers = {"Content-Type": "application/sdp"}
        async with self._session().post(self.whep_url, data=offer, headers=headers) as response:
            body = await response.text()
            if response.status != 201:
                raise WhepError(f"POST {self.whep_url}: {response.status} {body[:300]}")
            location = response.headers.get("Location")
            if not location:
                raise WhepError(f"POST {self.whep_url}: 201 without Location")
            self.location = str(response.url.join(URL(location)))
        self.answer_sdp = body
        return body

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._track = track
        if self.decode:
            self._reader = asyncio.create_task(self._read_decoded(track))

    async def _read_decoded(self, track: MediaStreamTrack) -> None:
        while True:
            if self.stalled:
                await self._wait_unstalled()
                continue
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            record = FrameRecord(time.monotonic(), frame.pts or 0, frame.width, frame.height)
            self._add_frame(record)

    async def _wait_unstalled(self) -> None:
        while self.stalled:
            self._progress.clear()
            await self._progress.wait()

    def _hook_decoder_queue(self, receiver: RTCRtpReceiver) -> None:
        # Name-mangled privates of aiortc 1.16's RTCRtpReceiver: fail loudly if they move.
        if not hasattr(receiver, "_RTCRtpReceiver__decoder_queue"):
            raise WhepError("aiortc's RTCRtpReceiver changed: cannot count without decoding")
        receiver._RTCRtpReceiver__decoder_queue = _CountingQueue(self._on_encoded_frame)
        jitter_buffer = receiver._RTCRtpReceiver__jitter_buffer
        jitter_add = jitter_buffer.add

        def add_and_tag(packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
            # The receiver rebases frame.timestamp before queueing it: keep the RTP one.
            pli_flag, frame = jitter_add(packet)
            if frame is not None:
                frame.rtp_timestamp = frame.timestamp  # type: ignore[attr-defined]
            return pli_flag, frame

        jitter_buffer.add = add_and_tag

    def _hook_jitter_buffer(self, receiver: RTCRtpReceiver) -> None:
        jitter_buffer = receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
        jitter_add = jitter_buffer.add

        def add_and_keep(packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
            pli_flag, frame = jitter_add(packet)
            if frame is not None:  # whole frame, still on its RTP timestamp
                record = EncodedRecord(time.monotonic(), frame.timestamp, bytes(frame.data))
                self.encoded.append(record)
            return pli_flag, frame

        jitter_buffer.add = add_and_keep

    def _hook_rtp(self, receiver: RTCRtpReceiver) -> None:
        """Count packets and note when each RTP timestamp's last packet arrived."""
        handle_rtp: Callable[[RtpPacket, int], Awaitable[None]] = receiver._handle_rtp_packet

        async def counting_handle_rtp(packet: RtpPacket, arrival_time_ms: int) -> None:
            self.rtp_packets += 1
            self.marker_packets += packet.marker
            self.rtp_log.append((packet.sequence_number, packet.timestamp, packet.ssrc))
            self._arrivals[packet.timestamp] = time.monotonic()
            if len(self._arrivals) > _ARRIVALS_KEPT:
                del self._arrivals[next(iter(self._arrivals))]
            await handle_rtp(packet, arrival_time_ms)

        receiver._handle_rtp_packet = counting_handle_rtp  # type: ignore[method-assign]

    def _on_encoded_frame(self, frame: JitterFrame) -> None:
        if self.stalled:
            return
        timestamp = frame.rtp_timestamp
        at = self._arrivals.pop(timestamp, time.monotonic())
        self._add_frame(
            FrameRecord(at, timestamp, keyframe=_has_idr(frame.data), size=len(frame.data))
        )

    def _add_frame(self, record: FrameRecord) -> None:
        self.frames.append(record)
        self._progress.set()

"""An RTSP camera as a Source: camgate's own asyncio RTSP client.

Why not FFmpeg's demuxer: we need the RTP marker bit (a picture goes out the moment its
last packet arrives), exact RTP timestamps, the SDP's sprop-parameter-sets, no thread
per camera and a clean TEARDOWN. One coroutine per camera does all of it:

    connect -> OPTIONS -> DESCRIBE (401 -> auth, 3xx -> redirect) -> SETUP video
    [-> SETUP audio] -> PLAY -> RTP (TCP interleaved or UDP) -> depacketize -> assemble
    -> emit(AccessUnit)

The camera's audio track is set up too when the hub attached an audio listener
(attach_audio) and the camera offers one camgate can pass on (gateway.rtsp.sdp_audio);
its packets go through gateway.sources.rtsp_audio, where anything broken is dropped
without touching the video. A camera that refuses the audio SETUP streams video only.
RTCP sender reports of both tracks give AccessUnits and AudioPackets their `capture`
time. The control connection is gateway/sources/rtsp_control.py (talk back uses it too).
Every failure leaves run() as a SourceError whose message is safe to show;
credentials appear nowhere but in the Authorization header.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from gateway.media.accessunit import AccessUnit
from gateway.media.assembler import AccessUnitAssembler
from gateway.media.audio import AudioFormat, AudioPacket
from gateway.media.limits import LimitExceeded, StreamLimits, describe_bytes
from gateway.media.rtcp import CaptureClock, build_receiver_report, parse_sender_reports
from gateway.media.rtp_h264 import H264Depacketizer, parse_rtp
from gateway.rtsp.message import (
    InterleavedFrame,
    RtspResponse,
)
from gateway.rtsp.sdp import H264Stream, SdpError, base_url, find_h264
from gateway.rtsp.sdp_audio import AudioTrack, find_audio
from gateway.rtsp.url import RtspUrl, parse_url, redact, strip_credentials
from gateway.sources.base import SourceError, SourceLimitError
from gateway.sources.registry import CameraKind, SourceSetup, register
from gateway.sources.rtsp_audio import AudioReceiver
from gateway.sources.rtsp_control import (
    MAX_REDIRECTS,
    TEARDOWN_TIMEOUT_S,
    RtspControl,
    is_redirect,
    open_control,
    parse_session_header,
    parse_transport,
    redirect_target,
    status_text,
)

if TYPE_CHECKING:
    from gateway.config import CameraConfig

log = logging.getLogger("camgate.rtsp")

PROBE_TIMEOUT_S = 1.0
RTCP_INTERVAL_S = 5.0
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024  # an IDR arrives as one burst of packets
REORDER_WINDOW = 64  # packets this far behind are late or duplicate, not a restart
_SEQ_MOD = 1 << 16

Emit = Callable[[AccessUnit], None]


def _port_pair(text: str | None) -> tuple[int, int] | None:
    """`5000-5001` or `5000` -> (5000, 5001); None if absent or malformed."""
    if not text:
        return None
    first, _, second = text.partition("-")
    if not first.isdigit() or (second and not second.isdigit()):
        return None
    return int(first), int(second) if second else int(first) + 1


# --- RTCP ---------------------------------------------------------------------------


def _dummy_rtp(payload_type: int, own_ssrc: int) -> bytes:
    """An empty RTP packet, sent only to open a NAT pinhole towards the camera."""
    return struct.pack("!BBHII", 0x80, payload_type & 0x7F, 0, 0, own_ssrc)


# --- UDP -------------------------------------------------------------------------------


class _Datagrams(asyncio.DatagramProtocol):
    """Hands on datagrams from the camera's address; drops everyone else's."""

    def __init__(self, peer_hosts: set[str], on_packet: Callable[[bytes], None] | None) -> None:
        self._peer_hosts = peer_hosts
        self._on_packet = on_packet
        self.on_error: Callable[[BaseException], None] = lambda exc: None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._on_packet is None or addr[0] not in self._peer_hosts:
            return
        try:
            self._on_packet(data)
        except Exception as exc:  # an exception here would close the transport silently
            self.on_error(exc)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable for our pinhole packets: harmless


def bind_udp_pair(family: int) -> tuple[socket.socket, socket.socket]:
    """Two UDP sockets on an even port and the next one (RFC 3550 11: RTP even, RTCP
    odd), bound on the wildcard address of `family`."""
    host = "::" if family == socket.AF_INET6 else "0.0.0.0"
    for _ in range(50):
        rtp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            rtp.bind((host, 0))
            port = rtp.getsockname()[1]
            if port % 2 == 0 and port < 65535:
                rtcp = socket.socket(family, socket.SOCK_DGRAM)
                try:
                    rtcp.bind((host, port + 1))
                except OSError:
                    rtcp.close()
                else:
                    return rtp, rtcp
        except OSError:
            pass
        rtp.close()
    raise SourceError("could not bind a UDP port pair for RTP")


@dataclass
class _UdpMedia:
    rtp: asyncio.DatagramTransport
    rtcp: asyncio.DatagramTransport
    server_rtcp: tuple[str, int] | None

    def close(self) -> None:
        self.rtp.close()
        self.rtcp.close()


# --- the source --------------------------------------------------------------------------


class RtspSource:
    """An RTSP camera. Stats for the API: packets_received, packets_lost, bytes_received.

    `discontinuities` counts the times packets were lost (or the camera restarted its
    RTP stream): the pictures that follow refer to what was lost, and the hub holds
    them back until the next IDR.
    """

    def __init__(
        self,
        url: str,
        transport: Literal["tcp", "udp"] = "tcp",
        timeout: float = 10.0,
        limits: StreamLimits | None = None,
    ) -> None:
        self.limits = limits or StreamLimits()
        try:
            self._url: RtspUrl | None = parse_url(url)
        except ValueError:
            self._url = None  # reported by run(), where the hub expects errors
        self.description = redact(url)
        self.transport = transport
        self.timeout = timeout
        # Filled in place after DESCRIBE, so whoever holds the list sees the update.
        self.sdp_parameter_sets: list[bytes] = []
        self.packets_received = 0
        self.packets_lost = 0
        self.bytes_received = 0
        self.discontinuities = 0
        self.connected = False  # the camera accepted a TCP connection (the probe's baseline)
        self._own_ssrc = int.from_bytes(os.urandom(4), "big")
        self._keepalive_method = "OPTIONS"  # GET_PARAMETER where OPTIONS lists it
        self._aggregate_uri = ""
        # AudioCapable: set at DESCRIBE; audio is set up only once attach_audio was called.
        self.audio_format: AudioFormat | None = None
        self.audio_refused: str | None = None
        self._emit_audio: Callable[[AudioPacket], None] | None = None
        self._audio_track: AudioTrack | None = None
        self._audio: AudioReceiver | None = None
        self._reset_stream_state(payload_type=96)

    def attach_audio(self, emit_audio: Callable[[AudioPacket], None]) -> None:
        self._emit_audio = emit_audio

    @property
    def audio_dropped(self) -> int:
        """Audio packets dropped as malformed on this connection."""
        return self._audio.dropped if self._audio else 0

    def request_keyframe(self) -> bool:
        return False  # RTSP has no standard way to ask a camera for an IDR

    async def probe(self) -> bool:
        """True if the camera's RTSP port accepts a TCP connection now (no RTSP is
        spoken): cheap enough to ask every second while waiting to retry."""
        if self._url is None:
            return False
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(self._url.host, self._url.port), PROBE_TIMEOUT_S
            )
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), PROBE_TIMEOUT_S)
        return True

    async def run(self, emit: Emit) -> None:
        try:
            await self._run(emit)
        except SourceError as exc:
            log.info("%s: %s", self.description, exc)
            raise
        except Exception as exc:
            log.exception("%s: unexpected failure", self.description)
            raise SourceError(f"internal error in the RTSP client: {type(exc).__name__}") from exc

    async def _run(self, emit: Emit) -> None:
        if self._url is None:
            raise SourceError("invalid camera URL: expected rtsp://host[:port]/path")
        url = self._url
        for _ in range(MAX_REDIRECTS + 1):
            control = await self._connect(url)
            udp: list[_UdpMedia] = []
            try:
                stream_or_redirect = await self._describe(control, url)
                if isinstance(stream_or_redirect, RtspUrl):
                    url = stream_or_redirect
                    log.info("%s: redirected to %s", self.description, url)
                    continue
                await self._stream(control, stream_or_redirect, udp, emit)
            finally:
                await self._shutdown(control, udp)
        raise SourceError(f"the camera redirected more than {MAX_REDIRECTS} times")

    # --- connection and handshake ---------------------------------------------------

    async def _connect(self, url: RtspUrl) -> RtspControl:
        control = await open_control(url, self.timeout, self._on_frame)
        self.connected = True
        return control

    async def _describe(self, control: RtspControl, url: RtspUrl) -> H264Stream | RtspUrl:
        options = await control.request("OPTIONS", url.public)
        if is_redirect(options):
            return redirect_target(url, options)
        # OPTIONS is a courtesy: some cameras refuse it and stream all the same.
        public = (options.headers.get("Public") or "") if options.ok else ""
        self._keepalive_method = "GET_PARAMETER" if "GET_PARAMETER" in public else "OPTIONS"
        response = await control.request("DESCRIBE", url.public, [("Accept", "application/sdp")])
        if is_redirect(response):
            return redirect_target(url, response)
        if response.status == 404:
            raise SourceError("the camera has no stream at this path (404 Not Found)")
        if not response.ok:
            raise SourceError(f"the camera refused DESCRIBE: {status_text(response)}")
        base = base_url(response.headers, url.public)
        sdp = response.body.decode("utf-8", "replace")
        try:
            stream = find_h264(sdp, base)
        except SdpError as exc:
            raise SourceError(str(exc)) from None
        self._describe_audio(sdp, base)
        return stream

    def _describe_audio(self, sdp: str, base: str) -> None:
        track = find_audio(sdp, base) if self._emit_audio is not None else None
        self._audio_track = track if track is not None and track.format is not None else None
        self.audio_format = track.format if track is not None else None
        self.audio_refused = track.refused if track is not None else None
        if self.audio_refused:
            log.info("%s: audio not passed on: %s", self.description, self.audio_refused)

    async def _setup(self, control: RtspControl, stream: H264Stream, udp: list[_UdpMedia]) -> float:
        """SETUP the video stream; returns the session timeout in seconds."""
        sockets = bind_udp_pair(control.family) if self.transport == "udp" else None
        try:
            if sockets is None:
                spec = f"RTP/AVP/TCP;unicast;interleaved={self._rtp_channel}-{self._rtcp_channel}"
            else:
                rtp_port = sockets[0].getsockname()[1]
                spec = f"RTP/AVP;unicast;client_port={rtp_port}-{rtp_port + 1}"
            uri = strip_credentials(stream.control_url)
            response = await control.request("SETUP", uri, [("Transport", spec)])
            self._check_setup(response)
            session = parse_session_header(response.headers.get("Session") or "")
            control.session = session.id or None
            params = parse_transport(response.headers.get("Transport") or "")
            if sockets is not None and "interleaved" not in params:
                media = await self._open_udp(
                    control, sockets, params, stream.payload_type, self._on_rtp, self._on_rtcp
                )
                udp.append(media)
                sockets = None  # the transports own them now
            else:
                self._use_interleaved(params)
            return session.timeout
        finally:
            if sockets is not None:
                for sock in sockets:
                    sock.close()

    def _check_setup(self, response: RtspResponse) -> None:
        if response.status == 461:
            other = "tcp" if self.transport == "udp" else "udp"
            raise SourceError(
                f"the camera does not support RTP over {self.transport.upper()}; "
                f"try transport: {other}"
            )
        if not response.ok:
            raise SourceError(f"the camera refused SETUP: {status_text(response)}")

    async def _setup_audio(
        self, control: RtspControl, track: AudioTrack, udp: list[_UdpMedia]
    ) -> None:
        """SETUP the audio track; a refusal leaves the camera streaming video only."""
        assert track.format is not None and self._emit_audio is not None
        audio = AudioReceiver(track, track.format, self._emit_audio, self.description)
        sockets = bind_udp_pair(control.family) if udp else None
        try:
            if sockets is None:
                # the channels after video's (usually 2-3)
                audio.rtp_channel = max(self._rtp_channel, self._rtcp_channel) + 1
                audio.rtcp_channel = audio.rtp_channel + 1
                spec = f"RTP/AVP/TCP;unicast;interleaved={audio.rtp_channel}-{audio.rtcp_channel}"
            else:
                rtp_port = sockets[0].getsockname()[1]
                spec = f"RTP/AVP;unicast;client_port={rtp_port}-{rtp_port + 1}"
            uri = strip_credentials(track.control_url)
            try:
                response = await control.request("SETUP", uri, [("Transport", spec)])
            except SourceError:
                if not control.alive:
                    raise
                response = None
            if response is None or not response.ok:
                why = status_text(response) if response is not None else "no answer"
                self.audio_format, self.audio_refused = None, f"the camera refused audio: {why}"
                log.warning("%s: %s; video only", self.description, self.audio_refused)
                return
            params = parse_transport(response.headers.get("Transport") or "")
            if sockets is not None and "interleaved" not in params:
                udp.append(
                    await self._open_udp(
                        control, sockets, params, track.payload_type, audio.on_rtp, audio.on_rtcp
                    )
                )
                sockets = None
            else:
                channels = _port_pair(params.get("interleaved"))
                if channels is not None and self._rtp_channel not in channels:
                    audio.rtp_channel, audio.rtcp_channel = channels
            self._audio = audio
        finally:
            if sockets is not None:
                for sock in sockets:
                    sock.close()

    def _use_interleaved(self, params: dict[str, str]) -> None:
        # We ask for channels 0-1 but the camera has the last word (some answer 2-3).
        channels = _port_pair(params.get("interleaved"))
        if channels is not None:
            self._rtp_channel, self._rtcp_channel = channels

    async def _open_udp(
        self,
        control: RtspControl,
        sockets: tuple[socket.socket, socket.socket],
        params: dict[str, str],
        payload_type: int,
        on_rtp: Callable[[bytes], None],
        on_rtcp: Callable[[bytes], None],
    ) -> _UdpMedia:
        loop = asyncio.get_running_loop()
        peer_host = control.peer[0]
        hosts = {peer_host, params.get("source", peer_host)}
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        rtp_protocol = _Datagrams(hosts, on_rtp)
        rtp_protocol.on_error = control.fail
        rtcp_protocol = _Datagrams(hosts, on_rtcp)
        rtcp_protocol.on_error = control.fail
        rtp, _ = await loop.create_datagram_endpoint(lambda: rtp_protocol, sock=sockets[0])
        rtcp, _ = await loop.create_datagram_endpoint(lambda: rtcp_protocol, sock=sockets[1])
        server = _port_pair(params.get("server_port"))
        media = _UdpMedia(rtp, rtcp, (peer_host, server[1]) if server else None)
        if server is not None:
            # Open NAT pinholes towards the camera's ports (what FFmpeg does too).
            rtp.sendto(_dummy_rtp(payload_type, self._own_ssrc), (peer_host, server[0]))
            rtcp.sendto(self._receiver_report(), (peer_host, server[1]))
        return media

    async def _play(self, control: RtspControl, stream: H264Stream) -> None:
        headers = [("Range", "npt=0.000-")]
        response = await control.request("PLAY", strip_credentials(stream.aggregate_url), headers)
        if not response.ok and stream.control_url != stream.aggregate_url:
            # Some servers refuse aggregate control for a single set-up stream.
            uri = strip_credentials(stream.control_url)
            response = await control.request("PLAY", uri, headers)
        if not response.ok:
            raise SourceError(f"the camera refused PLAY: {status_text(response)}")

    # --- streaming ------------------------------------------------------------------

    async def _stream(
        self, control: RtspControl, stream: H264Stream, udp: list[_UdpMedia], emit: Emit
    ) -> None:
        self.sdp_parameter_sets[:] = stream.parameter_sets
        self._reset_stream_state(stream.payload_type, emit)
        self._aggregate_uri = strip_credentials(stream.aggregate_url)
        self._video_clock = CaptureClock(stream.clock_rate)
        session_timeout = await self._setup(control, stream, udp)
        if self._audio_track is not None:
            await self._setup_audio(control, self._audio_track, udp)
        await self._play(control, stream)
        log.info(
            "%s: playing H.264 (payload type %d, %s, profile-level-id %s)%s",
            self.description, stream.payload_type, self.transport.upper(),
            stream.profile_level_id or "unknown",
            f" with {self._audio.format.describe()} audio" if self._audio else "",
        )  # fmt: skip
        self._last_rtp = time.monotonic()
        helpers = [
            asyncio.create_task(self._keepalive(control, session_timeout / 2), name="rtsp-ka"),
            asyncio.create_task(self._watchdog(control), name="rtsp-watchdog"),
            asyncio.create_task(self._send_reports(control, udp), name="rtsp-rtcp"),
        ]
        try:
            # shielded: a cancel must not cancel `failure`, which says the link is alive
            await asyncio.shield(control.failure)  # raises why the stream ended
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _keepalive(self, control: RtspControl, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                response = await control.request(self._keepalive_method, self._aggregate_uri)
            except SourceError as exc:
                log.warning("%s: keepalive failed: %s", self.description, exc)
                continue
            if response.status == 454:  # Session Not Found: the camera forgot us
                control.fail(SourceError("the camera ended the RTSP session"))
                return

    async def _watchdog(self, control: RtspControl) -> None:
        step = min(1.0, self.timeout / 4)
        while True:
            await asyncio.sleep(step)
            silent = time.monotonic() - self._last_rtp
            if silent > self.timeout:
                control.fail(SourceError(f"no video from the camera for {self.timeout:g} s"))
                return

    async def _send_reports(self, control: RtspControl, udp: list[_UdpMedia]) -> None:
        # Some cameras stop streaming to a receiver that never sends RTCP.
        while True:
            await asyncio.sleep(RTCP_INTERVAL_S)
            report = self._receiver_report()
            audio = self._audio
            audio_report = audio.receiver_report(self._own_ssrc) if audio else None
            if udp:
                if udp[0].server_rtcp is not None:
                    udp[0].rtcp.sendto(report, udp[0].server_rtcp)
                if audio_report and len(udp) > 1 and udp[1].server_rtcp is not None:
                    udp[1].rtcp.sendto(audio_report, udp[1].server_rtcp)
            else:
                control.send_interleaved(self._rtcp_channel, report)
                if audio is not None and audio_report is not None:
                    control.send_interleaved(audio.rtcp_channel, audio_report)

    async def _shutdown(self, control: RtspControl, udp: list[_UdpMedia]) -> None:
        """TEARDOWN (best effort, briefly) and close everything; runs on cancel too."""
        try:
            if control.session and control.alive:
                await self._teardown(control)
        finally:
            for media in udp:
                media.close()
            await control.close()

    async def _teardown(self, control: RtspControl) -> None:
        try:
            uri = self._aggregate_uri
            response = await control.exchange("TEARDOWN", uri, timeout=TEARDOWN_TIMEOUT_S)
            log.debug("%s: TEARDOWN answered %s", self.description, status_text(response))
        except (SourceError, OSError) as exc:
            log.debug("%s: TEARDOWN not confirmed: %s", self.description, exc)

    # --- RTP ----------------------------------------------------------------------------

    def _reset_stream_state(self, payload_type: int, emit: Emit | None = None) -> None:
        self._payload_type = payload_type
        self._emit = emit
        self._depacketizer = H264Depacketizer(max_nal_size=self.limits.picture_bytes)
        self._assembler = AccessUnitAssembler(max_picture_bytes=self.limits.picture_bytes)
        self._rtp_channel, self._rtcp_channel = 0, 1
        self._ssrc: int | None = None
        self._highest_seq: int | None = None  # extended (counts wraps) for RTCP
        self._reported_seq = 0
        self._reported_lost = 0
        self._last_rtp = time.monotonic()
        self._video_clock = CaptureClock(90_000)
        self._audio = None

    def _on_frame(self, frame: InterleavedFrame) -> None:
        channel, audio = frame.channel, self._audio
        if channel == self._rtp_channel:
            self._on_rtp(frame.data)
        elif channel == self._rtcp_channel:
            self._on_rtcp(frame.data)
        elif audio is not None and channel == audio.rtp_channel:
            audio.on_rtp(frame.data)
        elif audio is not None and channel == audio.rtcp_channel:
            audio.on_rtcp(frame.data)
        # frames on channels we did not set up: ignored

    def _on_rtcp(self, data: bytes) -> None:
        for report in parse_sender_reports(data):
            if self._ssrc is None or report.ssrc == self._ssrc:
                self._video_clock.update(report)

    def _on_rtp(self, data: bytes) -> None:
        try:
            packet = parse_rtp(data)
        except ValueError:
            return  # a broken packet is a lost packet: the sequence check will notice
        if packet.payload_type != self._payload_type or self._emit is None:
            return
        self.packets_received += 1
        self.bytes_received += len(data)
        self._last_rtp = time.monotonic()
        if not self._check_sequence(packet.ssrc, packet.sequence):
            return
        nals = self._depacketizer.push(packet.payload)
        if self._depacketizer.oversized:
            limit = describe_bytes(self._depacketizer.max_nal_size)
            raise SourceLimitError(f"NAL unit larger than {limit}: dropped; reconnecting")
        try:
            units = self._assembler.push(nals, packet.timestamp, packet.marker)
        except LimitExceeded as exc:
            raise SourceLimitError(f"{exc}; reconnecting") from None
        clock = self._video_clock
        for unit in units:
            if clock.synced:
                unit = replace(unit, capture=clock.capture(unit.pts & 0xFFFFFFFF))
            self._emit(unit)

    def _check_sequence(self, ssrc: int, seq: int) -> bool:
        """Count losses and resync after them; False for a late or duplicate packet."""
        if self._highest_seq is None or ssrc != self._ssrc:
            if self._highest_seq is not None:  # the camera restarted its RTP stream
                self._lost_sync()
                self._video_clock.reset()
            self._ssrc = ssrc
            self._highest_seq = self._reported_seq = seq
            return True
        skipped = (seq - self._highest_seq - 1) % _SEQ_MOD
        if skipped == 0:
            self._highest_seq += 1
            return True
        if skipped >= _SEQ_MOD - REORDER_WINDOW:
            return False  # just behind us: reordered or duplicated on the way (UDP)
        self._lost_sync()
        if skipped < _SEQ_MOD // 2:
            self.packets_lost += skipped
            self._highest_seq += skipped + 1
        else:  # far behind: the camera renumbered its packets, start counting afresh
            self._highest_seq = self._reported_seq = seq
        return True

    def _lost_sync(self) -> None:
        self.discontinuities += 1
        self._depacketizer.reset()
        self._assembler.mark_loss()

    def _receiver_report(self) -> bytes:
        highest = self._highest_seq or 0
        expected = highest - self._reported_seq
        lost = self.packets_lost - self._reported_lost
        fraction = min(255, (lost << 8) // expected) if expected > 0 and lost > 0 else 0
        self._reported_seq, self._reported_lost = highest, self.packets_lost
        return build_receiver_report(
            self._own_ssrc, self._ssrc, fraction, self.packets_lost, highest
        )


def _check_url(source: str) -> None:
    parse_url(source)  # its ValueError never repeats the URL (credentials)


def _build(setup: SourceSetup) -> RtspSource:
    camera = setup.camera
    assert camera.source is not None
    return RtspSource(camera.source, transport=camera.transport, limits=setup.limits)


def _build_substream(setup: SourceSetup) -> RtspSource | None:
    camera = setup.camera
    if camera.substream is None:
        return None
    return RtspSource(camera.substream, transport=camera.transport, limits=setup.limits)


def _describe(camera: CameraConfig) -> str:
    assert camera.source is not None
    return redact(camera.source)


RTSP = register(
    CameraKind(
        name="rtsp",
        model="RTSP camera",
        build=_build,
        build_substream=_build_substream,
        describe=_describe,
        takes_source=lambda source: source.lower().startswith(("rtsp://", "rtsps://")),
        source_hint="an rtsp:// or rtsps:// URL",
        check_source=_check_url,
        carries=frozenset({"onvif"}),  # ONVIF for PTZ only, the stream from `source`
        model_with={"onvif": "ONVIF camera"},
    )
)

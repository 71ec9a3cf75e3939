"""A tight per-viewer RTP send loop in place of aiortc's, for passthrough senders
(a camera's H.264 pictures, or its audio packets: one payload each).

aiortc's RTCRtpSender._run_rtp builds an RtpPacket object per packet, serializes its
header extensions, and awaits three coroutine layers (DTLS transport, ICE transport,
aioice) down to `sendto`: ~33 us per packet per viewer. Here the loop takes each frame's
payloads (packetized once for all viewers) and hands them to an RtpPump
(gateway/sendpath/rtppump.py: header template, SRTP in place, one `sendmmsg` per frame) —
in this process, or in a send worker process when `webrtc.send_workers` is set
(gateway/fanout/). What aiortc does around the send keeps working on its own state,
which this loop feeds:
- NACK: aiortc calls the sender's retransmit hook; the pump resends from its history
  (RTX-wrapped when negotiated);
- RTCP sender reports and getStats(): the same counters aiortc's loop updates, with
  each frame's NTP time from the camera's media clock (gateway/webrtc/avsync.py), so
  that a viewer's audio and video reports map RTP to the same clock (lip sync);
- PLI/FIR: the sender's keyframe hook asks the camera hub for an IDR.

Every aiortc internal this touches is reached through gateway/compat/aiortc.py, which is
checked once at start-up; without all of it camgate never builds a FastSender and sends
through aiortc's public API instead (gateway/webrtc/passthrough.py).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol

from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from gateway.compat import aiortc as aiortc_compat
from gateway.sendpath.rtppump import PumpGone, RtpPump, Rtx
from gateway.sendpath.srtp_inplace import inplace_supported
from gateway.sendpath.srtp_keys import SrtpKey
from gateway.sendpath.udpbatch import batch_sender

log = logging.getLogger("camgate.webrtc")

_HEADER_SIZE = 12


class Frame(NamedTuple):
    """What one send of the loop carries: a picture's RTP payloads, or an audio packet."""

    payloads: list[bytes]  # the same list object for every viewer (send workers share it)
    timestamp: int  # on the codec's RTP clock, from the stream's own origin
    ntp: int  # the NTP time `timestamp` stands for (gateway/webrtc/avsync.py)


# The next frame (None: nothing to send yet).
FrameSource = Callable[[], Awaitable[Frame | None]]


class Pump(Protocol):
    """What the loop sends through: an RtpPump here, or one in a send worker."""

    sent_packets: int
    batched_packets: int
    octets: int
    retransmitted: int
    rtp_timestamp: int
    ntp_timestamp: int
    sequence: int  # the next packet's (a send worker's: as of its last stats)

    def send_frame(self, payloads: list[bytes], timestamp: int) -> None: ...

    def retransmit(self, sequence_number: int) -> bool: ...


class SendWorkers(Protocol):
    """Send worker processes to hand a connected viewer to (gateway/fanout/pool.py)."""

    def attach(
        self, key: SrtpKey, sock: socket.socket, address: tuple[str, int], template: RtpPump
    ) -> tuple[Pump, Callable[[], None]]: ...


class FastSender:
    """Owns one passthrough sender's RTP loop."""

    def __init__(
        self,
        sender: RTCRtpSender,
        next_frame: FrameSource,
        workers: SendWorkers | None = None,
        *,
        on_keyframe_request: Callable[[], None] = lambda: None,
        marker_last: bool = True,
    ) -> None:
        self.sender = sender
        self.marker_last = marker_last  # False for audio (no marker on continuous audio)
        self.next_frame = next_frame
        self.workers = workers
        self.pump: Pump | None = None
        self._route: tuple[Any, Any] | None = None  # (ICE pair, SRTP session) of the pump
        self._detach: Callable[[], None] | None = None  # leaves the send worker
        self.on_pump_gone: Callable[[], object] = lambda: None  # the viewer can't be served
        self._template: RtpPump | None = None  # set while the RTP loop runs
        self._nack_floor: int | None = None  # NACKs for packets before it go unanswered
        self._timestamp_origin = 0
        aiortc_compat.hook_sender(
            sender,
            run_rtp=self.run_rtp,
            retransmit=self.retransmit,
            send_keyframe=on_keyframe_request,
        )

    # Counters for tests, stats and the benchmark.
    @property
    def sent_packets(self) -> int:
        return self.pump.sent_packets if self.pump else 0

    @property
    def batched_packets(self) -> int:
        return self.pump.batched_packets if self.pump else 0

    @property
    def retransmitted(self) -> int:
        return self.pump.retransmitted if self.pump else 0

    def _header_template(self, payload_type: int) -> tuple[bytes, int | None]:
        """The RTP header with this viewer's SSRC and header extensions (mid, abs-send-
        time), and the offset of the 3-byte abs-send-time value to patch per frame."""
        packet = RtpPacket(payload_type=payload_type, sequence_number=0, timestamp=0)
        packet.ssrc = aiortc_compat.ssrc(self.sender)
        packet.extensions.mid = aiortc_compat.sender_field(self.sender, "mid")
        packet.extensions.abs_send_time = 0xABCDEF  # a marker to find the value by
        header = packet.serialize(
            aiortc_compat.sender_field(self.sender, "rtp_header_extensions_map")
        )
        offset = header.find(b"\xab\xcd\xef", _HEADER_SIZE)
        return header, offset if offset >= 0 else None

    def _new_pump(self, codec: Any) -> RtpPump:
        header, abs_offset = self._header_template(codec.payloadType)
        rtx_payload_type = aiortc_compat.sender_field(self.sender, "rtx_payload_type")
        rtx = None
        if rtx_payload_type is not None:
            rtx = Rtx(rtx_payload_type, aiortc_compat.rtx_ssrc(self.sender))
        return RtpPump(
            header=header,
            abs_send_time_offset=abs_offset,
            ssrc=aiortc_compat.ssrc(self.sender),
            payload_type=codec.payloadType,
            sequence=secrets.randbits(16),
            rtx=rtx,
            rtx_sequence=secrets.randbits(16),
            marker_last=self.marker_last,
            keep_history=aiortc_compat.nack_negotiated(codec),
        )

    async def run_rtp(self, codec: Any) -> None:
        sender = self.sender
        aiortc_compat.sender_field(sender, "rtp_started").set()
        self._timestamp_origin = secrets.randbits(32)
        self._template = self._new_pump(codec)
        try:
            while True:
                frame = await self.next_frame()
                if frame is not None:
                    self._send(frame)
        except PumpGone as exc:
            log.warning("viewer's send path is gone (%s): closing the viewer", exc)
            self.on_pump_gone()
        except (ConnectionError, MediaStreamError, OSError):
            pass
        except Exception:  # keep the contract: never leave stop() waiting
            log.exception("RTP send loop failed")
        finally:
            self._template = None
            if self._detach is not None:
                self._detach()
                self._detach = None
            track = sender.track
            if track is not None:
                track.stop()
            aiortc_compat.sender_field(sender, "rtp_exited").set()

    def _send(self, frame: Frame) -> None:
        assert self._template is not None
        sender = self.sender
        payloads, frame_timestamp, ntp = frame
        dtls = sender.transport
        pump = self._pump_for(dtls, self._template)
        timestamp = (self._timestamp_origin + frame_timestamp) & 0xFFFFFFFF
        sent, octets = pump.sent_packets, pump.octets
        pump.send_frame(payloads, timestamp)
        aiortc_compat.record_sent(
            sender,
            ntp_timestamp=ntp,
            rtp_timestamp=timestamp,
            octets=pump.octets,
            packets=pump.sent_packets,
        )
        aiortc_compat.count_sent(dtls, pump.sent_packets - sent, pump.octets - octets)

    def push_one(self, frame: Frame, now_ntp: int, abs_time: bytes) -> None:
        """Send a one-payload frame (an audio packet) now, from the caller: a camera's
        audio fan-out, for every listener in one go (no task wake-up per packet per
        viewer), with the least Python per viewer. `now_ntp` and `abs_time`
        (gateway/sendpath/rtppump.py: abs_send_time) are taken once for all listeners by
        the caller. Dropped while the RTP loop is not running (not connected yet, or
        ended); never raises into the caller."""
        template = self._template
        if template is None:
            return
        try:
            sender = self.sender
            dtls = sender.transport
            pump = self.pump
            if pump is None or not aiortc_compat.on_route(dtls, self._route):
                pump = self._pump_for(dtls, template)
            if not isinstance(pump, RtpPump):  # a send worker's: the general way
                self._send(frame)
                return
            timestamp = (self._timestamp_origin + frame.timestamp) & 0xFFFFFFFF
            payload = frame.payloads[0]
            pump.send_one(payload, timestamp, now_ntp, abs_time)
            aiortc_compat.record_sent(
                sender,
                ntp_timestamp=frame.ntp,
                rtp_timestamp=timestamp,
                octets=pump.octets,
                packets=pump.sent_packets,
            )
            aiortc_compat.count_sent(dtls, 1, len(payload))
        except PumpGone as exc:
            log.warning("viewer's send path is gone (%s): closing the viewer", exc)
            self._template = None
            self.on_pump_gone()
        except (ConnectionError, OSError):
            pass  # the connection is ending: the session's close follows
        except Exception:
            log.exception("RTP send failed")

    def _pump_for(self, dtls: Any, template: RtpPump) -> Pump:
        """The pump for the current ICE pair and SRTP session (they are set once the
        viewer connects and, in practice, never change after)."""
        route = aiortc_compat.route(dtls)
        if isinstance(route, str):
            raise ConnectionError(route)
        if self.pump is not None and self._route == route:
            return self.pump
        pair, srtp = route
        if self._detach is not None:
            self._detach()
            self._detach = None
        if self.pump is not None:  # a new pair: go on from where the old pump was
            template.sequence = getattr(self.pump, "sequence", template.sequence)
        self._route = route
        if self.workers is not None:
            sock = pair.protocol.transport.get_extra_info("socket")
            if sock is None:
                raise ConnectionError("the viewer's socket is gone")
            key = SrtpKey(*aiortc_compat.sending_key(dtls))
            self.pump, self._detach = self.workers.attach(key, sock, pair.remote_addr, template)
        else:
            self.pump = _connect_here(template, srtp, pair)
        return self.pump

    def stream_switched(self) -> None:
        """The viewer's feed moved to another stream, which starts at a keyframe: what was
        sent before it can no longer help the picture, so NACKs for it are not answered.
        (On a slow link their retransmissions, a whole packet history of the stream just
        left, would crowd out the new stream's keyframe for a second or more.)"""
        if self.pump is not None:
            self._nack_floor = self.pump.sequence

    async def retransmit(self, sequence_number: int) -> None:
        """A viewer's NACK (aiortc calls this from its RTCP handling)."""
        floor = self._nack_floor
        if floor is not None and 0 < (floor - sequence_number) & 0xFFFF <= 0x8000:
            return  # sent before the last switch
        if self.pump is not None:
            with contextlib.suppress(ConnectionError):  # the send loop notices it too
                self.pump.retransmit(sequence_number)


def _connect_here(pump: RtpPump, srtp: Any, pair: Any) -> RtpPump:
    """Send from this process, on the ICE pair's own socket."""
    transport = pair.protocol.transport
    address = pair.remote_addr

    def send_datagram(data: bytes) -> None:
        transport.sendto(data, address)

    sock = transport.get_extra_info("socket")
    batch = batch_sender() if sock is not None and inplace_supported(srtp) is None else None
    if batch is not None and not batch.aim(sock.family, address):
        batch = None
    pump.connect(
        srtp,
        send_datagram,
        backlog=transport.get_write_buffer_size,
        batch=batch,
        fd=sock.fileno() if sock is not None else -1,
    )
    return pump

"""A tight per-viewer RTP send loop in place of aiortc's, for passthrough senders.

aiortc's RTCRtpSender._run_rtp builds an RtpPacket object per packet, serializes its
header extensions, and awaits three coroutine layers (DTLS transport, ICE transport,
aioice) down to `sendto`: ~33 us per packet per viewer. Here the loop takes each frame's
payloads (packetized once for all viewers) and hands them to an RtpPump
(gateway/webrtc/rtppump.py: header template, SRTP in place, one `sendmmsg` per frame) —
in this process, or in a send worker process when `webrtc.send_workers` is set
(gateway/fanout/). What aiortc does around the send keeps working on its own state,
which this loop feeds:
- NACK: aiortc calls sender._retransmit(seq); the pump resends from its history
  (RTX-wrapped when negotiated);
- RTCP sender reports and getStats(): the same counters aiortc's loop updates;
- PLI/FIR: unchanged (gateway/webrtc/passthrough.py routes them to the camera).

All of aiortc's internals this needs are named in SENDER_FIELDS below and checked by
`fast_send_supported()` (tests/unit/test_fastsend.py fails if an aiortc upgrade changes
them); without them camgate falls back to aiortc's loop and logs why, once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket
from aiortc.utils import random16, random32, uint32_add

from gateway.webrtc.rtppump import PumpGone, RtpPump, Rtx
from gateway.webrtc.srtp_inplace import inplace_supported
from gateway.webrtc.udpbatch import batch_sender

if TYPE_CHECKING:
    from gateway.fanout.pool import SendWorkerPool

log = logging.getLogger("camgate.webrtc")

ICE_COMPONENT = 1
# Private RTCRtpSender attributes (name-mangled) this loop reads or updates.
SENDER_FIELDS = (
    "rtp_started",
    "rtp_exited",
    "mid",
    "rtp_header_extensions_map",
    "rtx_payload_type",
    "ntp_timestamp",
    "rtp_timestamp",
    "octet_count",
    "packet_count",
)
_HEADER_SIZE = 12


def _field(name: str) -> str:
    return f"_RTCRtpSender__{name}"


_NTP_TIMESTAMP, _RTP_TIMESTAMP = _field("ntp_timestamp"), _field("rtp_timestamp")
_OCTET_COUNT, _PACKET_COUNT = _field("octet_count"), _field("packet_count")

FrameSource = Callable[[Any], Awaitable[Any]]  # codec -> RTCEncodedFrame | None


class Pump(Protocol):
    """What the loop sends through: an RtpPump here, or one in a send worker."""

    sent_packets: int
    batched_packets: int
    octets: int
    retransmitted: int
    rtp_timestamp: int
    ntp_timestamp: int

    def send_frame(self, payloads: list[bytes], timestamp: int) -> None: ...

    def retransmit(self, sequence_number: int) -> bool: ...


def fast_send_supported(sender: RTCRtpSender) -> str | None:
    """None if this aiortc has what the fast loop relies on, else what is missing."""
    for name in SENDER_FIELDS:
        if not hasattr(sender, _field(name)):
            return f"RTCRtpSender has no {name}"
    for method in ("_run_rtp", "_retransmit", "_next_encoded_frame"):
        if not callable(getattr(sender, method, None)):
            return f"RTCRtpSender has no {method}()"
    return None


class FastSender:
    """Owns one passthrough sender's RTP loop."""

    def __init__(
        self,
        sender: RTCRtpSender,
        next_frame: FrameSource,
        workers: SendWorkerPool | None = None,
    ) -> None:
        self.sender = sender
        self.next_frame = next_frame
        self.workers = workers
        self.pump: Pump | None = None
        self._route: tuple[Any, Any] | None = None  # (ICE pair, SRTP session) of the pump
        self._detach: Callable[[], None] | None = None  # leaves the send worker
        self.on_pump_gone: Callable[[], object] = lambda: None  # the viewer can't be served
        sender._run_rtp = self.run_rtp  # type: ignore[method-assign]
        sender._retransmit = self.retransmit  # type: ignore[method-assign]

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

    def _get(self, name: str) -> Any:
        return getattr(self.sender, _field(name))

    def _header_template(self, payload_type: int) -> tuple[bytes, int | None]:
        """The RTP header with this viewer's SSRC and header extensions (mid, abs-send-
        time), and the offset of the 3-byte abs-send-time value to patch per frame."""
        packet = RtpPacket(payload_type=payload_type, sequence_number=0, timestamp=0)
        packet.ssrc = self.sender._ssrc
        packet.extensions.mid = self._get("mid")
        packet.extensions.abs_send_time = 0xABCDEF  # a marker to find the value by
        header = packet.serialize(self._get("rtp_header_extensions_map"))
        offset = header.find(b"\xab\xcd\xef", _HEADER_SIZE)
        return header, offset if offset >= 0 else None

    def _new_pump(self, codec: Any) -> RtpPump:
        header, abs_offset = self._header_template(codec.payloadType)
        rtx_payload_type = self._get("rtx_payload_type")
        return RtpPump(
            header=header,
            abs_send_time_offset=abs_offset,
            ssrc=self.sender._ssrc,
            payload_type=codec.payloadType,
            sequence=random16(),
            rtx=None if rtx_payload_type is None else Rtx(rtx_payload_type, self.sender._rtx_ssrc),
            rtx_sequence=random16(),
        )

    async def run_rtp(self, codec: Any) -> None:
        sender = self.sender
        self._get("rtp_started").set()
        timestamp_origin = random32()
        template = self._new_pump(codec)
        try:
            while True:
                frame = await self.next_frame(codec)
                if frame is None:
                    continue
                dtls = sender.transport
                pump = self._pump_for(dtls, template)
                timestamp = uint32_add(timestamp_origin, frame.timestamp)
                sent, octets = pump.sent_packets, pump.octets
                pump.send_frame(frame.payloads, timestamp)
                # What aiortc's loop keeps for RTCP sender reports and getStats().
                setattr(sender, _NTP_TIMESTAMP, pump.ntp_timestamp)
                setattr(sender, _RTP_TIMESTAMP, pump.rtp_timestamp)
                setattr(sender, _OCTET_COUNT, pump.octets)
                setattr(sender, _PACKET_COUNT, pump.sent_packets)
                _count_dtls(dtls, pump.sent_packets - sent, pump.octets - octets)
        except PumpGone as exc:
            log.warning("viewer's send path is gone (%s): closing the viewer", exc)
            self.on_pump_gone()
        except (ConnectionError, MediaStreamError, OSError):
            pass
        except Exception:  # keep the contract: never leave stop() waiting
            log.exception("RTP send loop failed")
        finally:
            if self._detach is not None:
                self._detach()
                self._detach = None
            track = sender.track
            if track is not None:
                track.stop()
            self._get("rtp_exited").set()

    def _pump_for(self, dtls: Any, template: RtpPump) -> Pump:
        """The pump for the current ICE pair and SRTP session (they are set once the
        viewer connects and, in practice, never change after)."""
        if dtls._state.name != "CONNECTED":
            raise ConnectionError("DTLS is not connected")
        pair = dtls.transport._connection._nominated.get(ICE_COMPONENT)
        if pair is None:
            raise ConnectionError("no ICE pair selected")
        route = (pair, dtls._tx_srtp)
        if self.pump is not None and self._route == route:
            return self.pump
        if self._detach is not None:
            self._detach()
            self._detach = None
        if self.pump is not None:  # a new pair: go on from where the old pump was
            template.sequence = getattr(self.pump, "sequence", template.sequence)
        self._route = route
        if self.workers is not None:
            self.pump, self._detach = self.workers.attach(dtls, pair, template)
        else:
            self.pump = _connect_here(template, dtls._tx_srtp, pair)
        return self.pump

    async def retransmit(self, sequence_number: int) -> None:
        """A viewer's NACK (aiortc calls this from its RTCP handling)."""
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


def _count_dtls(dtls: Any, packets: int, octets: int) -> None:
    """The DTLS transport's own counters (its getStats)."""
    name_packets, name_bytes = "_RTCDtlsTransport__tx_packets", "_RTCDtlsTransport__tx_bytes"
    if hasattr(dtls, name_packets):
        setattr(dtls, name_packets, getattr(dtls, name_packets) + packets)
        setattr(dtls, name_bytes, getattr(dtls, name_bytes) + octets)

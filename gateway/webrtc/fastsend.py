"""A tight per-viewer RTP send loop in place of aiortc's, for passthrough senders.

aiortc's RTCRtpSender._run_rtp builds an RtpPacket object per packet, serializes its
header extensions, and awaits three coroutine layers (DTLS transport, ICE transport,
aioice) down to `sendto`: ~33 us per packet per viewer. Everything but the header fields
that differ per viewer (sequence number, timestamp, SSRC, marker) is the same for every
packet of a frame, so here one header template per viewer is patched per packet and
written with the payload into a slot of a C buffer, SRTP-protected there in place with
the DTLS transport's own libsrtp session (srtp_inplace.py), and a frame's packets go to
the selected ICE pair's socket in one `sendmmsg` (udpbatch.py). What aiortc does around
the send keeps working on its own state, which this loop feeds:
- NACK: aiortc calls sender._retransmit(seq); ours rebuilds that packet from a compact
  history and sends it through aiortc's own path (RTX-wrapped when negotiated);
- RTCP sender reports and getStats(): the same counters aiortc's loop updates;
- PLI/FIR: unchanged (gateway/webrtc/passthrough.py routes them to the camera).

All of aiortc's internals this needs are named in REQUIRED_* below and checked by
`fast_send_supported()` (tests/unit/test_fastsend.py fails if an aiortc upgrade changes
them); without them camgate falls back to aiortc's loop and logs why, once.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket, wrap_rtx
from aiortc.utils import random16, random32, uint16_add, uint32_add

from gateway.webrtc.srtp_inplace import (
    SRTP_MAX_TRAILER_LEN,
    InPlaceProtector,
    inplace_supported,
)
from gateway.webrtc.udpbatch import SLOT_SIZE, BatchSender, batch_sender

log = logging.getLogger("camgate.webrtc")

HISTORY_SIZE = 128  # packets kept for NACK (aiortc keeps 128 too)
ICE_COMPONENT = 1
# Private RTCRtpSender attributes (name-mangled) this loop reads or updates.
SENDER_FIELDS = (
    "rtp_started",
    "rtp_exited",
    "mid",
    "rtp_header_extensions_map",
    "rtx_payload_type",
    "rtx_sequence_number",
    "ntp_timestamp",
    "rtp_timestamp",
    "octet_count",
    "packet_count",
)
_HEADER = struct.Struct("!BBHII")
NTP_UNIX_OFFSET_S = 2208988800  # 1900-01-01 to 1970-01-01


def _field(name: str) -> str:
    return f"_RTCRtpSender__{name}"


_NTP_TIMESTAMP, _RTP_TIMESTAMP = _field("ntp_timestamp"), _field("rtp_timestamp")
_OCTET_COUNT, _PACKET_COUNT = _field("octet_count"), _field("packet_count")


def ntp_now() -> int:
    """Now as a 64-bit NTP timestamp (aiortc's clock.current_ntp_time, without its
    datetime arithmetic, which cost more than building a packet)."""
    return int((time.time() + NTP_UNIX_OFFSET_S) * (1 << 32))


FrameSource = Callable[[Any], Awaitable[Any]]  # codec -> RTCEncodedFrame | None


def fast_send_supported(sender: RTCRtpSender) -> str | None:
    """None if this aiortc has what the fast loop relies on, else what is missing."""
    for name in SENDER_FIELDS:
        if not hasattr(sender, _field(name)):
            return f"RTCRtpSender has no {name}"
    for method in ("_run_rtp", "_retransmit", "_next_encoded_frame"):
        if not callable(getattr(sender, method, None)):
            return f"RTCRtpSender has no {method}()"
    return None


@dataclass(frozen=True)
class _Route:
    """Everything a frame's send needs, resolved once per ICE pair and SRTP session."""

    dtls: Any  # RTCDtlsTransport
    pair: Any  # aioice CandidatePair
    srtp: Any  # pylibsrtp.Session
    transport: Any  # asyncio.DatagramTransport of the pair's socket
    address: tuple[Any, ...]
    fd: int
    protector: InPlaceProtector | None
    batch: BatchSender | None  # None: one sendto per packet

    @classmethod
    def build(cls, dtls: Any, pair: Any, batch: BatchSender | None) -> _Route:
        transport = pair.protocol.transport
        sock = transport.get_extra_info("socket")
        address = pair.remote_addr
        srtp = dtls._tx_srtp
        protector = None
        if batch is not None and sock is not None and inplace_supported(srtp) is None:
            family = sock.family
            if batch.destination == address or batch.aim(family, address):
                protector = InPlaceProtector(srtp)
        return cls(
            dtls=dtls,
            pair=pair,
            srtp=srtp,
            transport=transport,
            address=address,
            fd=sock.fileno() if sock is not None else -1,
            protector=protector,
            batch=batch if protector is not None else None,
        )


class FastSender:
    """Owns one passthrough sender's RTP loop and its NACK history."""

    def __init__(self, sender: RTCRtpSender, next_frame: FrameSource) -> None:
        self.sender = sender
        self.next_frame = next_frame
        self.history: dict[int, tuple[int, int, bool, bytes]] = {}  # seq % size -> packet
        self.retransmitted = 0
        self.sent_packets = 0
        self.batched_packets = 0  # of those, sent in sendmmsg batches
        self.payload_type = 0  # the codec's, once sending starts
        self._sequence = 0
        self._cached_route: _Route | None = None
        self._batch = batch_sender()
        sender._run_rtp = self.run_rtp  # type: ignore[method-assign]
        sender._retransmit = self.retransmit  # type: ignore[method-assign]

    def _get(self, name: str) -> Any:
        return getattr(self.sender, _field(name))

    def _set(self, name: str, value: Any) -> None:
        setattr(self.sender, _field(name), value)

    def _header_template(self, payload_type: int) -> tuple[bytearray, int | None]:
        """The RTP header with this viewer's SSRC and header extensions (mid, abs-send-
        time), and the offset of the 3-byte abs-send-time value to patch per frame."""
        packet = RtpPacket(payload_type=payload_type, sequence_number=0, timestamp=0)
        packet.ssrc = self.sender._ssrc
        packet.extensions.mid = self._get("mid")
        packet.extensions.abs_send_time = 0xABCDEF  # a marker to find the value by
        header = bytearray(packet.serialize(self._get("rtp_header_extensions_map")))
        offset = header.find(b"\xab\xcd\xef", _HEADER.size)
        return header, offset if offset >= 0 else None

    async def run_rtp(self, codec: Any) -> None:
        sender = self.sender
        self._get("rtp_started").set()
        self._sequence = random16()
        timestamp_origin = random32()
        header, abs_offset = self._header_template(codec.payloadType)
        self.payload_type = codec.payloadType
        try:
            while True:
                frame = await self.next_frame(codec)
                if frame is None:
                    continue
                route = self._route()
                timestamp = uint32_add(timestamp_origin, frame.timestamp)
                if abs_offset is not None:  # 6.18 fixed point seconds, 24 bits
                    abs_send_time = (ntp_now() >> 14) & 0xFFFFFF
                    header[abs_offset : abs_offset + 3] = abs_send_time.to_bytes(3, "big")
                payloads = frame.payloads
                if route.batch is not None:
                    self._send_batched(route, header, payloads, timestamp)
                    self.batched_packets += len(payloads)
                else:
                    self._send_one_by_one(route, header, payloads, timestamp)
                octets = sum(map(len, payloads))
                count = len(payloads)
                self.sent_packets += count
                # What aiortc's loop keeps for RTCP sender reports and getStats().
                setattr(sender, _NTP_TIMESTAMP, ntp_now())
                setattr(sender, _RTP_TIMESTAMP, timestamp)
                setattr(sender, _OCTET_COUNT, getattr(sender, _OCTET_COUNT) + octets)
                setattr(sender, _PACKET_COUNT, getattr(sender, _PACKET_COUNT) + count)
                _count_dtls(route.dtls, count, octets)
        except (ConnectionError, MediaStreamError, OSError):
            pass
        except Exception:  # keep the contract: never leave stop() waiting
            log.exception("RTP send loop failed")
        finally:
            track = sender.track
            if track is not None:
                track.stop()
            self._get("rtp_exited").set()

    def _route(self) -> _Route:
        """Where this frame goes: the DTLS transport's SRTP session and the selected ICE
        pair's socket and address (looked up per frame; cached while they stay)."""
        dtls = self.sender.transport
        if dtls._state.name != "CONNECTED":
            raise ConnectionError("DTLS is not connected")
        pair = dtls.transport._connection._nominated.get(ICE_COMPONENT)
        if pair is None:
            raise ConnectionError("no ICE pair selected")
        route = self._cached_route
        if (
            route is None
            or route.pair is not pair
            or route.srtp is not dtls._tx_srtp
            or route.transport.is_closing()
        ):
            route = self._cached_route = _Route.build(dtls, pair, self._batch)
        return route

    def _packet_header(self, header: bytearray, marker: bool, timestamp: int) -> None:
        _HEADER.pack_into(
            header,
            0,
            header[0],
            (0x80 if marker else 0) | self.payload_type,
            self._sequence,
            timestamp,
            self.sender._ssrc,
        )

    def _remember(self, timestamp: int, marker: bool, payload: bytes) -> None:
        sequence = self._sequence
        self.history[sequence % HISTORY_SIZE] = (sequence, timestamp, marker, payload)
        self._sequence = (sequence + 1) & 0xFFFF

    def _send_batched(
        self, route: _Route, header: bytearray, payloads: list[bytes], timestamp: int
    ) -> None:
        """Build each packet in a slot of the batch, protect it there, and send the
        slots with one system call per batch."""
        batch = route.batch
        assert batch is not None and route.protector is not None
        view, slots, protect = batch.view, batch.slots, route.protector.protect
        header_length = len(header)
        last = len(payloads) - 1
        used = 0
        for i, payload in enumerate(payloads):
            marker = i == last
            length = header_length + len(payload)
            if length > SLOT_SIZE - SRTP_MAX_TRAILER_LEN:  # never from our packetizer
                self._flush(route, used)
                used = 0
                self._send_one_by_one(route, header, [payload], timestamp, marker)
                continue
            self._packet_header(header, marker, timestamp)
            start = used * SLOT_SIZE
            view[start : start + header_length] = header
            view[start + header_length : start + length] = payload
            batch.set_length(used, protect(slots[used], length))
            self._remember(timestamp, marker, payload)
            used += 1
            if used == batch.capacity:
                self._flush(route, used)
                used = 0
        self._flush(route, used)

    def _flush(self, route: _Route, count: int) -> None:
        """Send the first `count` slots; what the kernel cannot take now (full socket
        buffer) goes through asyncio's transport, which queues it in order."""
        if not count:
            return
        batch = route.batch
        assert batch is not None
        transport = route.transport
        sent = 0
        if not transport.get_write_buffer_size():  # else keep behind what is queued
            sent = batch.send(route.fd, count)
        for slot in range(sent, count):
            transport.sendto(batch.datagram(slot), route.address)

    def _send_one_by_one(
        self,
        route: _Route,
        header: bytearray,
        payloads: list[bytes],
        timestamp: int,
        last_marker: bool = True,
    ) -> None:
        """Where no batch can be used: a bytes object and a sendto per packet."""
        protect, sendto, address = route.srtp.protect, route.transport.sendto, route.address
        last = len(payloads) - 1
        for i, payload in enumerate(payloads):
            marker = last_marker and i == last
            self._packet_header(header, marker, timestamp)
            sendto(protect(bytes(header) + payload), address)
            self._remember(timestamp, marker, payload)

    async def retransmit(self, sequence_number: int) -> None:
        """A viewer's NACK: resend from history, through aiortc's own (slower) path."""
        entry = self.history.get(sequence_number % HISTORY_SIZE)
        if entry is None or entry[0] != sequence_number:
            return
        sequence, timestamp, marker, payload = entry
        packet = RtpPacket(
            payload_type=self.payload_type,
            marker=int(marker),
            sequence_number=sequence,
            timestamp=timestamp,
        )
        packet.ssrc = self.sender._ssrc
        packet.payload = payload
        packet.extensions.mid = self._get("mid")
        rtx_payload_type = self._get("rtx_payload_type")
        if rtx_payload_type is not None:
            packet = wrap_rtx(
                packet,
                payload_type=rtx_payload_type,
                sequence_number=self._get("rtx_sequence_number"),
                ssrc=self.sender._rtx_ssrc,
            )
            self._set("rtx_sequence_number", uint16_add(self._get("rtx_sequence_number"), 1))
        self.retransmitted += 1
        data = packet.serialize(self._get("rtp_header_extensions_map"))
        await self.sender.transport._send_rtp(data)


def _count_dtls(dtls: Any, packets: int, octets: int) -> None:
    """The DTLS transport's own counters (its getStats)."""
    name_packets, name_bytes = "_RTCDtlsTransport__tx_packets", "_RTCDtlsTransport__tx_bytes"
    if hasattr(dtls, name_packets):
        setattr(dtls, name_packets, getattr(dtls, name_packets) + packets)
        setattr(dtls, name_bytes, getattr(dtls, name_bytes) + octets)

"""A tight per-viewer RTP send loop in place of aiortc's, for passthrough senders.

aiortc's RTCRtpSender._run_rtp builds an RtpPacket object per packet, serializes its
header extensions, and awaits three coroutine layers (DTLS transport, ICE transport,
aioice) down to `sendto`: ~33 us per packet per viewer. Everything but the header fields
that differ per viewer (sequence number, timestamp, SSRC, marker) is the same for every
packet of a frame, so here one header template per viewer is patched in place, SRTP-
protected with the DTLS transport's own libsrtp session and written straight to the
selected ICE pair's socket. What aiortc does around the send keeps working on its own
state, which this loop feeds:
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
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCRtpSender, clock
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket, wrap_rtx
from aiortc.utils import random16, random32, uint16_add, uint32_add

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

FrameSource = Callable[[Any], Awaitable[Any]]  # codec -> RTCEncodedFrame | None


def _field(name: str) -> str:
    return f"_RTCRtpSender__{name}"


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
    """Owns one passthrough sender's RTP loop and its NACK history."""

    def __init__(self, sender: RTCRtpSender, next_frame: FrameSource) -> None:
        self.sender = sender
        self.next_frame = next_frame
        self.history: dict[int, tuple[int, int, bool, bytes]] = {}  # seq % size -> packet
        self.retransmitted = 0
        self.sent_packets = 0
        self.payload_type = 0  # the codec's, once sending starts
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
        sequence = random16()
        timestamp_origin = random32()
        header, abs_offset = self._header_template(codec.payloadType)
        payload_type = self.payload_type = codec.payloadType
        try:
            while True:
                frame = await self.next_frame(codec)
                if frame is None:
                    continue
                dtls = sender.transport
                if dtls._state.name != "CONNECTED":
                    raise ConnectionError("DTLS is not connected")
                pair = dtls.transport._connection._nominated.get(ICE_COMPONENT)
                if pair is None:
                    raise ConnectionError("no ICE pair selected")
                protect = dtls._tx_srtp.protect
                sendto = pair.protocol.transport.sendto
                address = pair.remote_addr
                timestamp = uint32_add(timestamp_origin, frame.timestamp)
                if abs_offset is not None:  # 6.18 fixed point seconds, 24 bits
                    abs_send_time = (clock.current_ntp_time() >> 14) & 0xFFFFFF
                    header[abs_offset : abs_offset + 3] = abs_send_time.to_bytes(3, "big")
                payloads = frame.payloads
                last = len(payloads) - 1
                octets = 0
                history = self.history
                for i, payload in enumerate(payloads):
                    marker = i == last
                    _HEADER.pack_into(
                        header,
                        0,
                        header[0],
                        (0x80 if marker else 0) | payload_type,
                        sequence,
                        timestamp,
                        sender._ssrc,
                    )
                    history[sequence % HISTORY_SIZE] = (sequence, timestamp, marker, payload)
                    sendto(protect(bytes(header) + payload), address)
                    octets += len(payload)
                    sequence = (sequence + 1) & 0xFFFF
                count = last + 1
                self.sent_packets += count
                # What aiortc's loop keeps for RTCP sender reports and getStats().
                self._set("ntp_timestamp", clock.current_ntp_time())
                self._set("rtp_timestamp", timestamp)
                self._set("octet_count", self._get("octet_count") + octets)
                self._set("packet_count", self._get("packet_count") + count)
                _count_dtls(dtls, count, octets)
        except (ConnectionError, MediaStreamError, OSError):
            pass
        except Exception:  # keep the contract: never leave stop() waiting
            log.exception("RTP send loop failed")
        finally:
            track = sender.track
            if track is not None:
                track.stop()
            self._get("rtp_exited").set()

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

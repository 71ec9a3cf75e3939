"""One viewer's RTP stream (video or audio), sent from payloads packetized once for every viewer.

Per packet only what differs per viewer is done: the header fields (sequence number,
timestamp, marker) patched into a template that already holds the SSRC and header
extensions, SRTP in place in a C slot, and a frame's packets handed to the kernel in
one `sendmmsg`. The same pump runs inside the gateway process (gateway/webrtc/fastsend.py)
and in send worker processes (gateway/fanout/worker.py); it knows nothing of aiortc.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.sendpath.srtp_inplace import SRTP_MAX_TRAILER_LEN, InPlaceProtector, SrtpError
from gateway.sendpath.udpbatch import SLOT_SIZE, BatchSender

HISTORY_SIZE = 128  # packets kept for NACK (aiortc keeps 128 too)
PROBE_COPIES = 8  # a congestion probe repeats the last this many packets
NTP_UNIX_OFFSET_S = 2208988800  # 1900-01-01 to 1970-01-01
_HEADER = struct.Struct("!BBHII")
_SEQUENCE = struct.Struct("!H")
_AFTER_FIRST_BYTE = struct.Struct("!BHII")  # marker and payload type, seq, timestamp, SSRC


def ntp_now() -> int:
    """Now as a 64-bit NTP timestamp (aiortc's clock.current_ntp_time, without its
    datetime arithmetic, which cost more than building a packet)."""
    return int((time.time() + NTP_UNIX_OFFSET_S) * (1 << 32))


def abs_send_time(ntp: int) -> bytes:
    """The abs-send-time header extension's value for an NTP time: 6.18 fixed point
    seconds, 24 bits."""
    return ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big")


class PumpGone(ConnectionError):
    """The pump cannot send any more (its send worker stopped): the viewer must go."""


@dataclass(frozen=True)
class Rtx:
    """RFC 4588 retransmission stream, when the viewer negotiated one."""

    payload_type: int
    ssrc: int


class RtpPump:
    """Sends frames to one viewer, once connect() has said where to."""

    def __init__(
        self,
        *,
        header: bytes,
        abs_send_time_offset: int | None,
        ssrc: int,
        payload_type: int,
        sequence: int,
        rtx: Rtx | None = None,
        rtx_sequence: int = 0,
        marker_last: bool = True,
        keep_history: bool = True,
    ) -> None:
        self.header = bytearray(header)
        # Video: the marker bit ends each picture. Continuous audio (RFC 3551 4.1): never set.
        self.marker_last = marker_last
        self.abs_send_time_offset = abs_send_time_offset
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.sequence = sequence
        self.rtx = rtx
        self.rtx_sequence = rtx_sequence
        self.history: dict[int, tuple[int, int, bool, bytes]] = {}  # seq % size -> packet
        # False where the viewer negotiated no NACK (audio): send_one keeps no history.
        self.keep_history = keep_history
        self.sent_packets = 0
        self.batched_packets = 0
        self.octets = 0
        self.retransmitted = 0
        self.probe_packets = 0  # RTX copies sent to probe the path (send_probe)
        self.rtp_timestamp = 0
        self.ntp_timestamp = 0
        self.srtp: Any = None
        self.send_datagram: Callable[[bytes], object] = lambda _data: None
        self.backlog: Callable[[], int] = lambda: 0
        self.batch: BatchSender | None = None
        self.protector: InPlaceProtector | None = None
        self.fd = -1
        # send_one()'s state, unpacked once: (slot 0's view, its pointer, its iovec, the
        # C srtp_protect, its context, its length cell, the batch); None: no batch.
        self._one: tuple[Any, ...] | None = None

    def connect(
        self,
        srtp: Any,
        send_datagram: Callable[[bytes], object],
        *,
        backlog: Callable[[], int] = lambda: 0,
        batch: BatchSender | None = None,
        fd: int = -1,
    ) -> None:
        """Where packets go: an SRTP session (pylibsrtp.Session) and a socket, as `fd`
        for batches and as `send_datagram` for the rest. Called again when they change."""
        self.srtp = srtp
        self.send_datagram = send_datagram
        self.backlog = backlog
        self.batch = batch
        self.protector = InPlaceProtector(srtp) if batch is not None else None
        self.fd = fd
        self._one = None
        if batch is not None and self.protector is not None:
            srtp_protect, context, cell = self.protector.raw()
            self._one = (
                batch.view,
                batch.slots[0],
                batch.iov[0],
                srtp_protect,
                context,
                cell,
                batch,
            )

    def send_frame(self, payloads: list[bytes], timestamp: int) -> None:
        """Send one frame's RTP payloads (the last one carries the marker if `marker_last`)."""
        header = self.header
        offset = self.abs_send_time_offset
        if offset is not None:  # 6.18 fixed point seconds, 24 bits
            header[offset : offset + 3] = ((ntp_now() >> 14) & 0xFFFFFF).to_bytes(3, "big")
        if self.batch is not None:
            self._send_batched(payloads, timestamp)
            self.batched_packets += len(payloads)
        else:
            for i, payload in enumerate(payloads):
                self._send_one(payload, timestamp, self.marker_last and i == len(payloads) - 1)
        self.sent_packets += len(payloads)
        self.octets += sum(map(len, payloads))
        self.rtp_timestamp = timestamp
        self.ntp_timestamp = ntp_now()

    def send_one(self, payload: bytes, timestamp: int, ntp: int, abs_time: bytes) -> None:
        """send_frame([payload], timestamp) with the least Python per packet (an audio
        packet, to each of a camera's listeners in turn): the header goes straight into
        the batch's first slot, SRTP in place, one `sendmmsg`. `ntp` is now and `abs_time`
        its abs-send-time value, taken once for all viewers by the caller."""
        one = self._one
        header = self.header
        header_length = len(header)
        length = header_length + len(payload)
        if one is None or length > SLOT_SIZE - SRTP_MAX_TRAILER_LEN or self.backlog():
            self.send_frame([payload], timestamp)
            return
        view, slot, iov, srtp_protect, context, cell, batch = one
        sequence = self.sequence
        marker = self.marker_last  # a one-payload frame: its only packet is its last
        view[:header_length] = header
        _AFTER_FIRST_BYTE.pack_into(
            view, 1, (0x80 if marker else 0) | self.payload_type, sequence, timestamp, self.ssrc
        )
        offset = self.abs_send_time_offset
        if offset is not None:
            view[offset : offset + 3] = abs_time
        view[header_length:length] = payload
        cell[0] = length
        if srtp_protect(context, slot, cell):
            raise SrtpError("srtp_protect failed")
        iov.iov_len = cell[0]
        if not batch.send(self.fd, 1):  # full socket buffer: queued behind
            self.send_datagram(batch.datagram(0))
        if self.keep_history:
            self.history[sequence % HISTORY_SIZE] = (sequence, timestamp, marker, payload)
        self.sequence = (sequence + 1) & 0xFFFF
        self.sent_packets += 1
        self.batched_packets += 1
        self.octets += len(payload)
        self.rtp_timestamp = timestamp
        self.ntp_timestamp = ntp

    def _patch(self, marker: bool, timestamp: int) -> None:
        _HEADER.pack_into(
            self.header,
            0,
            self.header[0],
            (0x80 if marker else 0) | self.payload_type,
            self.sequence,
            timestamp,
            self.ssrc,
        )

    def _remember(self, timestamp: int, marker: bool, payload: bytes) -> None:
        sequence = self.sequence
        self.history[sequence % HISTORY_SIZE] = (sequence, timestamp, marker, payload)
        self.sequence = (sequence + 1) & 0xFFFF

    def _send_one(self, payload: bytes, timestamp: int, marker: bool) -> None:
        self._patch(marker, timestamp)
        self.send_datagram(self.srtp.protect(bytes(self.header) + payload))
        self._remember(timestamp, marker, payload)

    def _send_batched(self, payloads: list[bytes], timestamp: int) -> None:
        """Build each packet in a slot, protect it there, one system call per batch.
        (The hot loop of the whole gateway: everything it touches is a local.)"""
        batch, protector = self.batch, self.protector
        assert batch is not None and protector is not None
        view, slots, iov = batch.view, batch.slots, batch.iov
        srtp_protect, context, cell = protector.raw()
        header, history, pack_into = self.header, self.history, _HEADER.pack_into
        first_byte, payload_type, ssrc = header[0], self.payload_type, self.ssrc
        capacity = batch.capacity
        header_length = len(header)
        last = len(payloads) - 1 if self.marker_last else -1
        sequence = self.sequence
        used = 0
        for i, payload in enumerate(payloads):
            marker = i == last
            length = header_length + len(payload)
            if length > SLOT_SIZE - SRTP_MAX_TRAILER_LEN:  # never from our packetizer
                self._flush(used)
                used = 0
                self.sequence = sequence
                self._send_one(payload, timestamp, marker)
                sequence = self.sequence
                continue
            pack_into(
                header,
                0,
                first_byte,
                (0x80 if marker else 0) | payload_type,
                sequence,
                timestamp,
                ssrc,
            )
            start = used * SLOT_SIZE
            view[start : start + header_length] = header
            view[start + header_length : start + length] = payload
            cell[0] = length
            if srtp_protect(context, slots[used], cell):
                raise SrtpError("srtp_protect failed")
            iov[used].iov_len = cell[0]
            history[sequence % HISTORY_SIZE] = (sequence, timestamp, marker, payload)
            sequence = (sequence + 1) & 0xFFFF
            used += 1
            if used == capacity:
                self._flush(used)
                used = 0
        self.sequence = sequence
        self._flush(used)

    def _flush(self, count: int) -> None:
        """Send the first `count` slots; what the kernel cannot take now (full socket
        buffer) goes to send_datagram, which queues it in order."""
        if not count:
            return
        batch = self.batch
        assert batch is not None
        sent = 0
        if not self.backlog():  # else stay behind what is queued
            sent = batch.send(self.fd, count)
        for slot in range(sent, count):
            self.send_datagram(batch.datagram(slot))

    def retransmit(self, sequence_number: int) -> bool:
        """A viewer's NACK: resend that packet from history (RTX-wrapped when negotiated);
        False if it is no longer there."""
        entry = self.history.get(sequence_number % HISTORY_SIZE)
        if entry is None or entry[0] != sequence_number:
            return False
        self._resend(entry, self.rtx)
        self.retransmitted += 1
        return True

    def send_probe(self, octets: int) -> int:
        """Load the path with about `octets` more, for the congestion probe
        (gateway/webrtc/congestion.py): RTX copies of the last PROBE_COPIES packets sent,
        as libwebrtc pads with. A receiver drops them as duplicates (recent ones only: an
        old sequence number would upset aiortc's jitter buffer), but they cross the same
        queues as the stream, so its next reports show whether the path carried them.
        Needs RTX (a plain duplicate would count as a received packet twice); returns the
        payload octets sent (0: nothing to copy, or no RTX)."""
        if self.rtx is None:
            return 0
        recent = [
            entry
            for back in range(1, PROBE_COPIES + 1)
            if (entry := self.history.get((self.sequence - back) % HISTORY_SIZE)) is not None
            and entry[0] == (self.sequence - back) & 0xFFFF
        ]
        sent = 0
        while recent and sent < octets:
            for entry in recent:
                self._resend(entry, self.rtx)
                self.probe_packets += 1
                sent += len(entry[3])
                if sent >= octets:
                    break
        return sent

    def _resend(self, entry: tuple[int, int, bool, bytes], rtx: Rtx | None) -> None:
        sequence, timestamp, marker, payload = entry
        header = bytearray(self.header)
        marker_bit = 0x80 if marker else 0
        if rtx is None:
            _HEADER.pack_into(
                header, 0, header[0], marker_bit | self.payload_type, sequence, timestamp, self.ssrc
            )
        else:
            _HEADER.pack_into(
                header,
                0,
                header[0],
                marker_bit | rtx.payload_type,
                self.rtx_sequence,
                timestamp,
                rtx.ssrc,
            )
            self.rtx_sequence = (self.rtx_sequence + 1) & 0xFFFF
            payload = _SEQUENCE.pack(sequence) + payload  # RFC 4588: original sequence first
        self.send_datagram(self.srtp.protect(bytes(header) + payload))

"""RTP packets for the backchannel (RFC 3550): G.711 (RFC 3551) and AAC in RFC 3640's
AAC-hbr mode, one access unit per packet. Pure: no I/O."""

from __future__ import annotations

import secrets
import struct
import time

# A packet sent this much later than its timestamp says (a burst after a stall upstream)
# moves the timestamps on to the clock: a camera's jitter buffer drops packets that come
# later than its latency (often 200 ms), so a short gap in the sound is the better loss.
MAX_LAG_S = 0.08


class RtpPacketizer:
    """Numbers and stamps the packets of one backchannel stream: sequence numbers and
    the timestamp start at random values (RFC 3550 5.1); the timestamp advances by the
    samples each packet carries, and over the silence between two talk spurts by the time
    that passed (a camera's jitter buffer would otherwise take the next spurt for late
    packets and drop it)."""

    def __init__(self, payload_type: int, clock_rate: int, ssrc: int | None = None) -> None:
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self._spurt_end: float | None = None  # when the last packet's sound ends
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc
        self.sequence = secrets.randbits(16)
        self.timestamp = secrets.randbits(32)
        self._first = True
        self.packets = 0  # sent so far, for RTCP sender reports
        self.octets = 0  # payload octets sent so far

    def packet(
        self, payload: bytes, samples: int, marker: bool = False, now: float | None = None
    ) -> bytes:
        now = time.monotonic() if now is None else now
        if self._spurt_end is not None and (
            (self._first and now > self._spurt_end) or now - self._spurt_end > MAX_LAG_S
        ):
            silence = int((now - self._spurt_end) * self.clock_rate)
            self.timestamp = (self.timestamp + silence) & 0xFFFFFFFF
            self._spurt_end = now
        # The marker of the first packet says "talk spurt begins" (RFC 3551 4.1).
        marker = marker or self._first
        if self._spurt_end is None:
            self._spurt_end = now
        self._spurt_end += samples / self.clock_rate
        self._first = False
        header = struct.pack(
            "!BBHII",
            0x80,
            (0x80 if marker else 0) | (self.payload_type & 0x7F),
            self.sequence,
            self.timestamp,
            self.ssrc,
        )
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        self.packets += 1
        self.octets += len(payload)
        return header + payload

    def timestamp_at(self, now: float | None = None) -> int | None:
        """The RTP timestamp of the instant `now` (monotonic) on this stream's clock, for
        a sender report: the next packet's timestamp is due when the last one's sound
        ends. None before the first packet."""
        if self._spurt_end is None:
            return None
        now = time.monotonic() if now is None else now
        return (self.timestamp + round((now - self._spurt_end) * self.clock_rate)) & 0xFFFFFFFF

    def new_spurt(self) -> None:
        """Talking resumes after a pause: mark the next packet."""
        self._first = True


def aac_hbr_payload(access_unit: bytes, size_length: int = 13, index_length: int = 3) -> bytes:
    """One AAC frame as an RFC 3640 payload: AU-headers-length (in bits), one AU-header
    (size, index 0), the frame."""
    if len(access_unit) >= 1 << size_length:
        raise ValueError("AAC frame too large for the AU-header's size field")
    header_bits = size_length + index_length
    au_header = (len(access_unit) << index_length).to_bytes((header_bits + 7) // 8, "big")
    return header_bits.to_bytes(2, "big") + au_header + access_unit

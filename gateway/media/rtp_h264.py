"""RTP packets (RFC 3550) and H.264 RTP depacketizing (RFC 6184, packetization-mode 0/1)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from gateway.media.h264 import NAL_FU_A, NAL_STAP_A

_HEADER = struct.Struct("!BBHII")

# A NAL unit larger than this is not a camera picture but a runaway FU-A (lost end bit,
# hostile sender): cap the reassembly buffer instead of growing without bound.
MAX_NAL_SIZE = 8_000_000


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    marker: bool
    payload: bytes


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP packet; ValueError on anything malformed.

    CSRCs and the header extension are skipped (a gateway has no use for them) and
    padding is removed.
    """
    if len(data) < _HEADER.size:
        raise ValueError("RTP packet shorter than its fixed header")
    b0, b1, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if b0 >> 6 != 2:
        raise ValueError(f"RTP version {b0 >> 6}, expected 2")
    offset = _HEADER.size + 4 * (b0 & 0x0F)
    if b0 & 0x10:  # header extension: 16-bit profile, 16-bit length in 32-bit words
        if offset + 4 > len(data):
            raise ValueError("RTP header extension truncated")
        (words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * words
    end = len(data)
    if b0 & 0x20:  # padding: the last byte counts the padding bytes, itself included
        padding = data[-1]
        if padding == 0 or padding > end - offset:
            raise ValueError("invalid RTP padding length")
        end -= padding
    if offset > end:
        raise ValueError("RTP header longer than the packet")
    return RtpPacket(
        payload_type=b1 & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        marker=bool(b1 & 0x80),
        payload=data[offset:end],
    )


class H264Depacketizer:
    """RTP payloads -> whole NAL units (without start codes).

    Stateful only for FU-A reassembly. It never raises on bad input: a camera sending
    one broken packet must not take the stream down. Everything discarded (a bad or
    unsupported payload, a fragment that cannot be placed, an abandoned partial NAL)
    adds one to `dropped`; a NAL unit abandoned for growing past `max_nal_size` also
    adds one to `oversized`.
    """

    def __init__(self, max_nal_size: int | None = None) -> None:
        self.max_nal_size = MAX_NAL_SIZE if max_nal_size is None else max_nal_size
        self.dropped = 0
        self.oversized = 0
        self._fu_header: int | None = None  # NAL header byte of the FU-A being rebuilt
        self._fu_parts: list[bytes] = []
        self._fu_size = 0

    def reset(self) -> None:
        """Forget a partial FU-A; call on a sequence-number gap (its middle is lost)."""
        if self._fu_header is not None:
            self.dropped += 1
        self._fu_header = None
        self._fu_parts = []
        self._fu_size = 0

    def push(self, payload: bytes) -> list[bytes]:
        """The NAL units completed by this RTP payload (often none, for FU-A middles)."""
        if not payload or payload[0] & 0x80:  # empty, or forbidden_zero_bit set
            self.dropped += 1
            return []
        kind = payload[0] & 0x1F
        if kind == NAL_FU_A:
            return self._push_fu_a(payload)
        # Any other packet ends a FU-A in progress: its end fragment was lost.
        self.reset()
        if 1 <= kind <= 23:
            return [payload]
        if kind == NAL_STAP_A:
            return self._split_stap_a(payload)
        self.dropped += 1  # STAP-B, MTAP16/24, FU-B (interleaved mode) or reserved types
        return []

    def _split_stap_a(self, payload: bytes) -> list[bytes]:
        nals: list[bytes] = []
        pos, end = 1, len(payload)
        while pos < end:
            if pos + 2 > end:
                self.dropped += 1
                break
            size = (payload[pos] << 8) | payload[pos + 1]
            pos += 2
            if size == 0 or pos + size > end:
                self.dropped += 1  # the NAL units before the damage are whole: keep them
                break
            nals.append(payload[pos : pos + size])
            pos += size
        return nals

    def _push_fu_a(self, payload: bytes) -> list[bytes]:
        if len(payload) < 3:  # indicator, header and at least one byte of NAL data
            self.dropped += 1
            return []
        fu = payload[1]
        start, end = bool(fu & 0x80), bool(fu & 0x40)
        header = (payload[0] & 0xE0) | (fu & 0x1F)  # F and NRI from the indicator
        if start:
            self.reset()  # a new start abandons an unfinished NAL
            self._fu_header = header
        elif self._fu_header is None or (self._fu_header & 0x1F) != (fu & 0x1F):
            # A fragment without its start (or of another NAL type) cannot be placed;
            # a half NAL would corrupt the picture, so drop it and what came before.
            self.reset()
            self.dropped += 1
            return []
        self._fu_parts.append(payload[2:])
        self._fu_size += len(payload) - 2
        if self._fu_size > self.max_nal_size:
            self.reset()
            self.oversized += 1
            return []
        if not end:
            return []
        nal = bytes([header]) + b"".join(self._fu_parts)
        self._fu_header = None
        self._fu_parts = []
        self._fu_size = 0
        return [nal]

"""RTP audio payloads -> codec frames with unwrapped timestamps.

G.711 and Opus: one RTP payload is one frame, passed on as it is. AAC in RFC 3640 form:
AU-headers-length, the AU headers, then the access units; one frame per access unit,
the first at the RTP timestamp and each next one 1024 samples later (or as the
AU-index-delta says). An access unit larger than a packet comes in fragments that are
put back together until the marker bit, up to a cap. MP4A-LATM: one AudioMuxElement
(length bytes, then the frame) per marker bit.

Anything malformed raises AudioPayloadError and is dropped by the caller: audio never
costs the video anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.media.assembler import TimestampUnwrapper

AAC_FRAME_SAMPLES = 1024
MAX_AAC_FRAME_BYTES = 16 * 1024  # 8 channels at AAC's own limit is 6 KiB
MAX_AUS_PER_PACKET = 64

Frame = tuple[int, bytes]  # (unwrapped timestamp, payload)


@dataclass(frozen=True)
class AacLayout:
    """RFC 3640 AU header field widths in bits (from the fmtp)."""

    size_length: int
    index_length: int
    index_delta_length: int


class AudioPayloadError(ValueError):
    """One audio packet (or a fragmented frame) could not be used; it was dropped."""


class BitReader:
    """Big-endian bits, most significant first; AudioPayloadError past the end."""

    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._left = len(data) * 8

    def read(self, count: int) -> int:
        if count > self._left:
            raise AudioPayloadError("AAC headers truncated")
        self._left -= count
        return (self._value >> self._left) & ((1 << count) - 1)


class AudioDepacketizer:
    """One track's RTP payloads -> frames. `aac` is None for one-frame-per-packet codecs."""

    def __init__(
        self,
        aac: AacLayout | None = None,
        max_frame: int = MAX_AAC_FRAME_BYTES,
        *,
        latm: bool = False,
    ) -> None:
        self.aac = aac
        self.latm = latm  # MP4A-LATM (RFC 3016/6416, config out of band): one frame per marker
        self.max_frame = max_frame
        self._unwrap = TimestampUnwrapper()
        self._fragment = bytearray()
        self._fragment_size = 0
        self._fragment_timestamp = 0
        self.abandoned = 0  # fragmented frames given up for a packet of another frame

    def reset(self) -> None:
        """After packet loss: a half-received frame is useless."""
        self._fragment.clear()
        self._fragment_size = 0

    def push(self, payload: bytes, timestamp: int, marker: bool) -> list[Frame]:
        start = self._unwrap(timestamp)
        if self.latm:
            return self._push_latm(payload, start, marker)
        if self.aac is None:
            if not payload:
                raise AudioPayloadError("empty audio payload")
            return [(start, payload)]
        return self._push_aac(self.aac, payload, start, marker)

    def _push_aac(self, aac: AacLayout, payload: bytes, start: int, marker: bool) -> list[Frame]:
        if len(payload) < 2:
            raise AudioPayloadError("AAC packet without AU headers")
        header_bits = int.from_bytes(payload[:2], "big")
        header_bytes = (header_bits + 7) // 8
        if header_bits == 0 or 2 + header_bytes > len(payload):
            self.reset()
            raise AudioPayloadError("AAC AU-headers-length does not fit the packet")
        bits = BitReader(payload[2 : 2 + header_bytes])
        sizes: list[int] = []
        deltas: list[int] = []
        consumed = 0
        while header_bits - consumed >= aac.size_length:
            index_bits = aac.index_length if not sizes else aac.index_delta_length
            sizes.append(bits.read(aac.size_length))
            deltas.append(bits.read(index_bits) if index_bits else 0)
            consumed += aac.size_length + index_bits
            if len(sizes) > MAX_AUS_PER_PACKET:
                self.reset()
                raise AudioPayloadError("too many AAC access units in one packet")
        data = payload[2 + header_bytes :]
        if not sizes:
            self.reset()
            raise AudioPayloadError("AAC packet without AU headers")
        continues = sizes == [self._fragment_size] and start == self._fragment_timestamp
        if self._fragment_size and not continues:
            self.reset()  # the rest of that frame was lost; this packet stands on its own
            self.abandoned += 1
        if self._fragment_size or (len(sizes) == 1 and sizes[0] > len(data)):
            return self._fragmented(sizes[0], data, start, marker)
        frames: list[Frame] = []
        offset = 0
        timestamp = start
        for number, (size, delta) in enumerate(zip(sizes, deltas, strict=True)):
            if number:
                timestamp += (delta + 1) * AAC_FRAME_SAMPLES
            if size == 0 or offset + size > len(data):
                raise AudioPayloadError("AAC AU sizes do not fit the packet")
            frames.append((timestamp, data[offset : offset + size]))
            offset += size
        return frames

    def _push_latm(self, payload: bytes, start: int, marker: bool) -> list[Frame]:
        """One AudioMuxElement (PayloadLengthInfo, then the frame), possibly over several
        packets up to the marker bit."""
        if self._fragment and start != self._fragment_timestamp:
            self.reset()
            self.abandoned += 1
        if not self._fragment:
            self._fragment_timestamp = start
        self._fragment += payload
        if len(self._fragment) > self.max_frame + self.max_frame // 255 + 1:
            self.reset()
            raise AudioPayloadError("LATM frame over the cap")
        if not marker:
            return []
        element, timestamp = bytes(self._fragment), self._fragment_timestamp
        self.reset()
        size, offset = 0, 0
        while offset < len(element) and element[offset] == 0xFF:
            size += 255
            offset += 1
        if offset >= len(element):
            raise AudioPayloadError("LATM length runs past the packet")
        size += element[offset]
        offset += 1
        if size == 0 or offset + size > len(element):
            raise AudioPayloadError("LATM frame length does not fit the packet")
        return [(timestamp, element[offset : offset + size])]

    def _fragmented(self, size: int, data: bytes, start: int, marker: bool) -> list[Frame]:
        if size > self.max_frame:
            self.reset()
            raise AudioPayloadError(f"AAC access unit of {size} bytes: over the cap")
        if not self._fragment_size:
            self._fragment_size, self._fragment_timestamp = size, start
        self._fragment += data
        if len(self._fragment) > self._fragment_size:
            self.reset()
            raise AudioPayloadError("AAC fragments longer than their access unit")
        if len(self._fragment) < self._fragment_size:
            if marker:
                self.reset()
                raise AudioPayloadError("AAC access unit ended incomplete")
            return []
        frame = (self._fragment_timestamp, bytes(self._fragment))
        self.reset()
        return [frame]

"""Count a viewer's frames from RTP without decoding: marker bits, sequence gaps, SEI stamps."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from bench.sei import read_stamp
from gateway.media.h264 import NAL_FU_A, NAL_SEI, NAL_STAP_A, nal_type
from gateway.media.rtp_h264 import H264Depacketizer


class RtpLike(Protocol):
    ssrc: int
    sequence_number: int
    timestamp: int
    marker: int  # aiortc's RtpPacket keeps the bit as an int
    payload: bytes


@dataclass
class WindowStats:
    """What one viewer received during a measuring window."""

    packets: int = 0
    bytes: int = 0
    frames: int = 0  # marker bits seen
    complete: int = 0  # frames with every packet, in order
    first_index: int | None = None  # lowest/highest camera index seen at all (complete or not)
    last_index: int | None = None
    latencies_ms: list[float] = field(default_factory=list)  # send stamp -> last packet
    first_packet_ms: list[float] = field(default_factory=list)  # send stamp -> first packet
    # (SSRC, RTP timestamp, camera send ns) per complete frame, to join with bench.wiretap
    stamps: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def expected(self) -> int:
        if self.first_index is None or self.last_index is None:
            return 0
        return self.last_index - self.first_index + 1

    def as_dict(self) -> dict[str, int]:
        return {
            "packets": self.packets,
            "bytes": self.bytes,
            "frames": self.frames,
            "complete": self.complete,
            "expected": self.expected,
        }


class FrameCounter:
    """Feed it every RTP packet of one H.264 stream, in arrival order.

    A frame counts as complete when its packets run without a sequence gap from the one
    after the previous marker to its own marker. Its SEI stamp (bench.sei) sits in the
    first packet(s), before the first slice, so only those are depacketized.
    """

    def __init__(self) -> None:
        self._now_ns = time.time_ns
        self._depacketizer = H264Depacketizer()
        self._ssrc: int | None = None
        self._last_seq: int | None = None
        self._at_frame_start = True
        self._frame_ok = True
        self._looking_for_stamp = True
        self._stamp: tuple[int, int] | None = None
        self._frame_start_ns = 0
        self.first_complete_ns: int | None = None
        self.window = WindowStats()

    def reset_window(self) -> WindowStats:
        """Start a new window; returns the one that ended."""
        ended, self.window = self.window, WindowStats()
        return ended

    def on_packet(self, packet: RtpLike) -> None:
        now_ns = self._now_ns()
        if self._ssrc is None:
            self._ssrc = packet.ssrc
        elif packet.ssrc != self._ssrc:
            return  # RTX or another stream: we never NACK, so nothing to count
        seq = packet.sequence_number
        if self._last_seq is not None and seq != (self._last_seq + 1) & 0xFFFF:
            # Lost packets: the frame in progress is damaged, and whether this packet
            # starts a new frame is unknown, so it belongs to a damaged frame too.
            self._frame_ok = False
        elif self._at_frame_start:
            self._frame_ok = True
            self._looking_for_stamp = True
            self._stamp = None
            self._frame_start_ns = now_ns
        self._last_seq = seq
        w = self.window
        w.packets += 1
        w.bytes += len(packet.payload)
        if self._looking_for_stamp:
            self._read_stamp(packet.payload)
        self._at_frame_start = bool(packet.marker)
        if packet.marker:
            self._end_frame(now_ns, packet.ssrc, packet.timestamp)

    def _read_stamp(self, payload: bytes) -> None:
        kind = payload[0] & 0x1F if payload else 0
        if kind == NAL_FU_A or not (1 <= kind <= 23 or kind == NAL_STAP_A):
            self._looking_for_stamp = False  # a fragmented NAL is a slice: no stamp ahead
            return
        for nal in self._depacketizer.push(payload):
            kind = nal_type(nal)
            if kind == NAL_SEI and self._stamp is None:
                self._stamp = read_stamp(nal)
            elif 1 <= kind <= 5:
                self._looking_for_stamp = False

    def _end_frame(self, now_ns: int, ssrc: int, rtp_timestamp: int) -> None:
        w = self.window
        w.frames += 1
        stamp, self._stamp = self._stamp, None
        if stamp is not None:
            index = stamp[1]
            w.first_index = index if w.first_index is None else min(w.first_index, index)
            w.last_index = index if w.last_index is None else max(w.last_index, index)
        if not self._frame_ok:
            return
        w.complete += 1
        if self.first_complete_ns is None:
            self.first_complete_ns = now_ns
        if stamp is not None:
            w.latencies_ms.append((now_ns - stamp[0]) / 1e6)
            w.first_packet_ms.append((self._frame_start_ns - stamp[0]) / 1e6)
            w.stamps.append((ssrc, rtp_timestamp, stamp[0]))

"""What the gateway and its send workers say to each other (pure: no I/O).

Two channels per worker (gateway/fanout/pool.py makes them):
- a byte stream of length-prefixed messages: each frame's RTP payloads once per worker
  (FRAME), then per viewer which frame to send with which RTP timestamp (SEND), NACKs
  (NACK), congestion probes (PROBE: how many octets of RTX copies to send); back from
  the worker, per viewer counters (STATS) and viewers it gave up on (GONE);
- a datagram socket for adding a viewer, which carries the viewer's UDP socket itself
  (SCM_RIGHTS) and its stream parameters (JSON), and for removing one.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

FRAME, SEND, NACK, STATS, GONE, PROBE = 1, 2, 3, 4, 5, 6
MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # a frame of a very high bitrate camera fits
MAX_CONTROL_BYTES = 16 * 1024

_PREFIX = struct.Struct("!BI")  # message type, body length
_FRAME_HEAD = struct.Struct("!QH")  # frame id, payload count
_PAYLOAD_LENGTH = struct.Struct("!H")
_SEND = struct.Struct("!IQI")  # viewer, frame id, RTP timestamp
_NACK = struct.Struct("!IH")  # viewer, sequence number
_PROBE = struct.Struct("!II")  # viewer, octets
# viewer, sent, batched, octets, retransmitted, dropped, RTP timestamp, NTP timestamp, next seq
_STATS = struct.Struct("!IQQQQQIQH")


class ProtocolError(ValueError):
    """A message that does not follow this protocol (a bug or a crashed peer)."""


def _message(kind: int, body: bytes) -> bytes:
    return _PREFIX.pack(kind, len(body)) + body


def frame_message(frame_id: int, payloads: list[bytes]) -> bytes:
    parts = [_FRAME_HEAD.pack(frame_id, len(payloads))]
    for payload in payloads:
        parts.append(_PAYLOAD_LENGTH.pack(len(payload)))
        parts.append(payload)
    return _message(FRAME, b"".join(parts))


def send_message(viewer: int, frame_id: int, timestamp: int) -> bytes:
    return _message(SEND, _SEND.pack(viewer, frame_id, timestamp))


def nack_message(viewer: int, sequence: int) -> bytes:
    return _message(NACK, _NACK.pack(viewer, sequence))


def probe_message(viewer: int, octets: int) -> bytes:
    return _message(PROBE, _PROBE.pack(viewer, octets))


@dataclass(frozen=True)
class Stats:
    viewer: int
    sent_packets: int
    batched_packets: int
    octets: int
    retransmitted: int
    dropped: int
    rtp_timestamp: int
    ntp_timestamp: int
    sequence: int  # the next packet's sequence number


def stats_message(stats: Stats) -> bytes:
    return _message(
        STATS,
        _STATS.pack(
            stats.viewer,
            stats.sent_packets,
            stats.batched_packets,
            stats.octets,
            stats.retransmitted,
            stats.dropped,
            stats.rtp_timestamp,
            stats.ntp_timestamp,
            stats.sequence,
        ),
    )


def gone_message(viewer: int, reason: str) -> bytes:
    return _message(GONE, struct.pack("!I", viewer) + reason.encode()[:500])


def parse_frame(body: bytes) -> tuple[int, list[bytes]]:
    if len(body) < _FRAME_HEAD.size:
        raise ProtocolError("short FRAME")
    frame_id, count = _FRAME_HEAD.unpack_from(body)
    offset = _FRAME_HEAD.size
    payloads = []
    for _ in range(count):
        if offset + 2 > len(body):
            raise ProtocolError("FRAME ends inside a payload length")
        (length,) = _PAYLOAD_LENGTH.unpack_from(body, offset)
        offset += 2
        if offset + length > len(body):
            raise ProtocolError("FRAME ends inside a payload")
        payloads.append(body[offset : offset + length])
        offset += length
    if offset != len(body):
        raise ProtocolError("FRAME has trailing bytes")
    return frame_id, payloads


def _fixed(layout: struct.Struct, body: bytes, name: str) -> tuple[Any, ...]:
    if len(body) != layout.size:
        raise ProtocolError(f"{name} of {len(body)} bytes")
    return layout.unpack(body)


def parse_send(body: bytes) -> tuple[int, int, int]:
    viewer, frame_id, timestamp = _fixed(_SEND, body, "SEND")
    return viewer, frame_id, timestamp


def parse_nack(body: bytes) -> tuple[int, int]:
    viewer, sequence = _fixed(_NACK, body, "NACK")
    return viewer, sequence


def parse_probe(body: bytes) -> tuple[int, int]:
    viewer, octets = _fixed(_PROBE, body, "PROBE")
    return viewer, octets


def parse_stats(body: bytes) -> Stats:
    return Stats(*_fixed(_STATS, body, "STATS"))


def parse_gone(body: bytes) -> tuple[int, str]:
    if len(body) < 4:
        raise ProtocolError("short GONE")
    return struct.unpack_from("!I", body)[0], body[4:].decode("utf-8", "replace")


class MessageReader:
    """Splits a byte stream into (type, body) messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        buffer = self._buffer
        buffer += data
        offset = 0
        try:
            while len(buffer) - offset >= _PREFIX.size:
                kind, length = _PREFIX.unpack_from(buffer, offset)
                if length > MAX_MESSAGE_BYTES:
                    raise ProtocolError(f"a message of {length} bytes")
                end = offset + _PREFIX.size + length
                if end > len(buffer):
                    break
                yield kind, bytes(buffer[offset + _PREFIX.size : end])
                offset = end
        finally:
            del buffer[:offset]


# --- control datagrams -----------------------------------------------------------------


@dataclass(frozen=True)
class ViewerSpec:
    """A viewer's RTP stream as the worker needs it (sent with the viewer's socket)."""

    viewer: int
    family: int
    address: tuple[str, int]
    header: bytes  # RTP header template: SSRC and header extensions
    abs_send_time_offset: int | None
    ssrc: int
    payload_type: int
    sequence: int
    rtx_payload_type: int | None
    rtx_ssrc: int
    rtx_sequence: int
    srtp_profile: int
    srtp_key: bytes  # master key and salt: only ever on the socket pair to the worker
    marker_last: bool = True  # video: the marker ends a picture; audio: never set

    def __repr__(self) -> str:
        return f"ViewerSpec(viewer={self.viewer}, ssrc={self.ssrc})"


def add_viewer_datagram(spec: ViewerSpec) -> bytes:
    fields = dict(spec.__dict__)
    fields["header"] = spec.header.hex()
    fields["srtp_key"] = spec.srtp_key.hex()
    return json.dumps({"op": "add", "viewer": fields}).encode()


def remove_viewer_datagram(viewer: int) -> bytes:
    return json.dumps({"op": "remove", "viewer": viewer}).encode()


def parse_control(datagram: bytes) -> tuple[str, ViewerSpec | int]:
    """("add", ViewerSpec) or ("remove", viewer id)."""
    try:
        message = json.loads(datagram)
        op = message["op"]
        if op == "remove":
            viewer = message["viewer"]
            if not isinstance(viewer, int):
                raise TypeError("viewer")
            return "remove", viewer
        if op != "add":
            raise ValueError(op)
        fields = dict(message["viewer"])
        fields["header"] = bytes.fromhex(fields["header"])
        fields["srtp_key"] = bytes.fromhex(fields["srtp_key"])
        fields["address"] = (str(fields["address"][0]), int(fields["address"][1]))
        return "add", ViewerSpec(**fields)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ProtocolError(f"bad control message ({type(exc).__name__})") from None

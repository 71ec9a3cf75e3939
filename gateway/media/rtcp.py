"""RTCP: the camera's sender reports (RFC 3550 6.4.1), the capture clock they give each
track, our receiver reports, and our sender reports (talk back's stream to a camera).

A camera's sender report pairs one RTP timestamp of a track with its wall clock (NTP)
at the same instant. With it every packet of that track gets a capture time, and since
video and audio reports use the same wall clock, the two tracks can be lined up.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_SR = 200
_NTP_TO_UNIX = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01
_WRAP = 1 << 32
_HALF = 1 << 31
MAX_PACKETS = 16  # a compound packet holds a few; a flood is cut short


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    unix_time: float  # the sender's wall clock (its NTP timestamp) in Unix seconds
    rtp_timestamp: int  # the same instant on the track's RTP clock (32 bits)


def parse_sender_reports(data: bytes) -> list[SenderReport]:
    """The sender reports in a compound RTCP packet. Anything malformed ends the walk:
    what was read before it is returned, never an exception."""
    reports: list[SenderReport] = []
    offset = 0
    for _ in range(MAX_PACKETS):
        if len(data) - offset < 4:
            break
        first, kind, words = struct.unpack_from("!BBH", data, offset)
        size = (words + 1) * 4
        if first >> 6 != 2 or offset + size > len(data):
            break
        if kind == _SR and size >= 28:
            ssrc, ntp_seconds, ntp_fraction, rtp = struct.unpack_from("!IIII", data, offset + 4)
            unix = ntp_seconds - _NTP_TO_UNIX + ntp_fraction / _WRAP
            reports.append(SenderReport(ssrc, unix, rtp))
        offset += size
    return reports


def build_receiver_report(
    own_ssrc: int, source_ssrc: int | None, fraction_lost: int, lost: int, highest_seq: int
) -> bytes:
    """A compound RTCP packet: receiver report (one block, or none before any RTP)
    plus the SDES CNAME that RFC 3550 6.1 requires in every compound packet."""
    blocks = b""
    if source_ssrc is not None:
        lost_field = max(min(lost, 0x7FFFFF), -0x800000) & 0xFFFFFF
        # jitter, LSR and DLSR stay 0: we read no sender reports
        word2 = (fraction_lost << 24) | lost_field
        blocks = struct.pack("!IIIIII", source_ssrc, word2, highest_seq & 0xFFFFFFFF, 0, 0, 0)
    count = len(blocks) // 24
    rr = struct.pack("!BBHI", 0x80 | count, 201, 1 + 6 * count, own_ssrc) + blocks
    return rr + _sdes_cname(own_ssrc)


def build_sender_report(
    own_ssrc: int, unix_time: float, rtp_timestamp: int, packets: int, octets: int
) -> bytes:
    """A compound RTCP packet: sender report (RFC 3550 6.4.1: `unix_time` and
    `rtp_timestamp` are the same instant; packets and payload octets sent so far; no
    report blocks, as we receive nothing) plus the SDES CNAME."""
    ntp = round((unix_time + _NTP_TO_UNIX) * _WRAP)
    sr = struct.pack(
        "!BBHIIIIII",
        0x80,
        _SR,
        6,
        own_ssrc,
        (ntp >> 32) & 0xFFFFFFFF,
        ntp & 0xFFFFFFFF,
        rtp_timestamp & 0xFFFFFFFF,
        packets & 0xFFFFFFFF,
        octets & 0xFFFFFFFF,
    )
    return sr + _sdes_cname(own_ssrc)


def _sdes_cname(own_ssrc: int) -> bytes:
    """The SDES CNAME chunk RFC 3550 6.1 requires in every compound packet."""
    cname = b"camgate"
    item = bytes((1, len(cname))) + cname + b"\x00"  # CNAME item, then the end marker
    item += b"\x00" * (-(len(item) + 4) % 4)
    return struct.pack("!BBHI", 0x81, 202, (len(item) + 4) // 4, own_ssrc) + item


class CaptureClock:
    """One track's RTP timestamp -> the camera's capture time (Unix seconds), from the
    latest sender report; None before the first one."""

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self._report: SenderReport | None = None

    @property
    def synced(self) -> bool:
        return self._report is not None

    def update(self, report: SenderReport) -> None:
        self._report = report

    def reset(self) -> None:
        self._report = None

    def capture(self, rtp_timestamp: int) -> float | None:
        report = self._report
        if report is None or self.clock_rate <= 0:
            return None
        # The signed 32-bit distance: right across a wrap, either side of the report.
        delta = (rtp_timestamp - report.rtp_timestamp + _HALF) % _WRAP - _HALF
        return report.unix_time + delta / self.clock_rate

"""What one viewer's network path carries, from the RTCP its receiver sends back.

Inputs are the report block for our video SSRC in each receiver (or sender) report —
fraction lost since the previous report, interarrival jitter, and the round-trip time
measured from its LSR/DLSR fields — the receiver's REMB, and the octets we sent. Pure:
the caller passes the time in, so tests and the benchmark drive it without a clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

# Weight in the smoothed loss of a report that comes LOSS_PERIOD_S after the previous one.
# A receiver reports every ~1 s, so 0.5 means the estimate follows a real change within
# two reports and one bad report alone moves it only half way. A report sooner after the
# last counts less (it covers less time): under loss Chromium sends one with every NACK,
# dozens a second, alternating "most lost" and "none lost" (retransmissions filled the
# holes); counted alike, a few of the latter in a row would hide a congested link.
LOSS_WEIGHT = 0.5
LOSS_PERIOD_S = 1.0
SENT_WINDOW_S = 2.0  # the sent rate is averaged over this much time


@dataclass(frozen=True)
class PathEstimate:
    bitrate_kbps: float | None  # what the path carries (the receiver's REMB), None: unknown
    loss: float  # 0..1, smoothed fraction lost from receiver reports
    rtt_ms: float | None
    jitter_ms: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "bitrate_kbps": None if self.bitrate_kbps is None else round(self.bitrate_kbps),
            "loss": round(self.loss, 4),
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 1),
            "jitter_ms": None if self.jitter_ms is None else round(self.jitter_ms, 1),
        }


class PathEstimator:
    """Folds one viewer's reports into a PathEstimate."""

    def __init__(self, *, loss_weight: float = LOSS_WEIGHT) -> None:
        self.loss_weight = loss_weight
        self.reports = 0  # receiver reports seen
        self.last_report_at: float | None = None
        self._loss = 0.0
        self._rtt_ms: float | None = None
        self._jitter_ms: float | None = None
        self._remb_kbps: float | None = None
        self._sent: deque[tuple[float, int]] = deque()  # (time, octets) in the window
        self._sent_octets = 0  # sum over the window

    def on_receiver_report(
        self, now: float, fraction_lost: int, jitter: int, clock_rate: int, rtt_ms: float | None
    ) -> None:
        """One report block about our stream: fraction_lost is the 8-bit fixed point
        fraction (RFC 3550 6.4.1), jitter in `clock_rate` units."""
        fraction = min(max(fraction_lost, 0), 255) / 256
        if self.reports == 0 or self.last_report_at is None:
            self._loss = fraction
        else:
            covered = max(now - self.last_report_at, 0.0) / LOSS_PERIOD_S
            weight = 1 - (1 - self.loss_weight) ** covered
            self._loss += weight * (fraction - self._loss)
        if clock_rate > 0 and jitter >= 0:
            self._jitter_ms = jitter * 1000 / clock_rate
        if rtt_ms is not None and rtt_ms >= 0:
            self._rtt_ms = rtt_ms
        self.reports += 1
        self.last_report_at = now

    def on_remb(self, now: float, bitrate_bps: int) -> None:
        if bitrate_bps >= 0:
            self._remb_kbps = bitrate_bps / 1000

    def on_sent(self, now: float, octets: int) -> None:
        """`octets` more were sent to this viewer by `now`."""
        if octets <= 0:
            return
        self._sent.append((now, octets))
        self._sent_octets += octets
        self._forget_sent(now)

    def sent_kbps(self, now: float) -> float:
        """The rate actually sent over the last SENT_WINDOW_S."""
        self._forget_sent(now)
        return self._sent_octets * 8 / 1000 / SENT_WINDOW_S

    def _forget_sent(self, now: float) -> None:
        sent = self._sent
        while sent and sent[0][0] <= now - SENT_WINDOW_S:
            self._sent_octets -= sent.popleft()[1]

    def estimate(self) -> PathEstimate | None:
        """None until the first receiver report."""
        if self.reports == 0:
            return None
        return PathEstimate(
            bitrate_kbps=self._remb_kbps,
            loss=self._loss,
            rtt_ms=self._rtt_ms,
            jitter_ms=self._jitter_ms,
        )

"""One viewer's congestion watch: its RTCP in, the main stream allowed or not out.

The tap (gateway/compat/aiortc.py) hands over every RTCP packet aiortc routes to the
viewer's video sender, on either send path: the report blocks about our SSRC (fraction
lost, jitter; aiortc measures the RTT from their LSR/DLSR), the RTX stream's during a
probe, and REMBs. They feed a
PathEstimator; a StreamPolicy turns the estimate into a verdict, which goes to the
viewer's feed as `allow_main(False, "congestion")` or `allow_main(True, "recovered")`.
The feed decides what the viewer gets (a pinned stream wins); this only says whether
the path carries the main stream.

The policy is run after every report and on a short tick (its waits are timed). When it
asks for a probe, the probe goes out through the fast send path's pump
(`RtpPump.send_probe`: RTX copies of recent packets, paced over the probe's length).
Without it (aiortc's own loop, a send worker, no RTX) an up-switch is its own trial.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from aiortc import RTCRtpSender

from gateway.compat import aiortc as aiortc_compat
from gateway.congestion.estimator import PathEstimator
from gateway.congestion.policy import Probe, StreamPolicy
from gateway.tasks import spawn

log = logging.getLogger("camgate.congestion")

VIDEO_CLOCK_RATE = 90_000
TICK_S = 0.5  # the policy's timed waits are checked this often between reports
PROBE_SLICE_S = 0.025  # a probe is sent in slices this far apart (paced, not one burst)
REASON_DOWN, REASON_UP = "congestion", "recovered"
# The main stream's rate to probe for before it was ever seen live (a 1080p camera's).
MAIN_GUESS_KBPS = 4000.0


class Feed(Protocol):
    """What the watch needs of the viewer's feed (gateway/feed.py's ViewerFeed)."""

    @property
    def current(self) -> str: ...  # "main" or "sub"

    def allow_main(self, allowed: bool, reason: str) -> None: ...


class ProbeSender(Protocol):
    """The fast path's pump (gateway/sendpath/rtppump.py)."""

    def send_probe(self, octets: int) -> int: ...


# A stream's bitrate now: 0 while it is not connected (the last rate seen is used), None
# when the camera has no such stream (then there is nothing to decide: no verdicts).
Kbps = Callable[[], float | None]


class CongestionWatch:
    """Watches one viewer's path; `start()` it once the sender exists, `close()` at the end."""

    def __init__(
        self,
        sender: RTCRtpSender,
        feed: Feed,
        *,
        main_kbps: Kbps,
        sub_kbps: Kbps,
        probe_sender: Callable[[], Any] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sender = sender
        self.feed = feed
        self.main_kbps = main_kbps
        self.sub_kbps = sub_kbps
        # The pump to probe through, looked up when a probe is due (it exists only once
        # the viewer is connected); None or one without send_probe: no probing.
        self.probe_sender = probe_sender
        self.clock = clock
        self.estimator = PathEstimator()
        self.policy = StreamPolicy(0.0, 0.0)
        self.verdicts: list[tuple[float, bool]] = []  # (time, allowed), for tests and bench
        self.probes = 0
        self.rtcp_packets = 0
        self._octets = aiortc_compat.octets_sent(sender)
        self._known_main = MAIN_GUESS_KBPS  # until the main stream's rate is seen
        self._known_sub = 0.0
        self._untap: Callable[[], None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._prober: asyncio.Task[None] | None = None

    def start(self) -> bool:
        """Tap the sender's RTCP; False (and a warning) when this aiortc can't."""
        missing = aiortc_compat.rtcp_tap_missing(self.sender)
        if missing:
            log.warning("no congestion estimate: this aiortc lacks %s", ", ".join(missing))
            return False
        self._untap = aiortc_compat.tap_rtcp(self.sender, self._on_rtcp)
        self._ticker = spawn(self._tick(), "congestion-tick")
        return True

    def close(self) -> None:
        if self._untap is not None:
            self._untap()
            self._untap = None
        for task in (self._ticker, self._prober):
            if task is not None:
                task.cancel()
        self._ticker = self._prober = None

    @property
    def main_allowed(self) -> bool:
        return self.policy.allowed

    def estimate_json(self) -> dict[str, object] | None:
        """The "estimate" of the stream channel's status message; None before any report."""
        estimate = self.estimator.estimate()
        if estimate is None:
            return None
        main, sub = self.main_kbps(), self.sub_kbps()
        return {
            **estimate.to_json(),
            "main_kbps": None if main is None else round(main or self._known_main),
            "sub_kbps": None if sub is None else round(sub or self._known_sub),
            "main_allowed": self.policy.allowed,
        }

    # -- input --------------------------------------------------------------------------
    def _on_rtcp(self, packet: Any) -> None:
        """Called by the tap for every RTCP packet aiortc gave the sender."""
        try:
            self._take(packet)
        except Exception:  # a viewer's odd report must never break its RTCP handling
            log.exception("congestion estimate: cannot use an RTCP packet")

    def _take(self, packet: Any) -> None:
        self.rtcp_packets += 1
        now = self.clock()
        ssrc = aiortc_compat.ssrc(self.sender)
        blocks = aiortc_compat.report_blocks(packet, ssrc)
        # While a probe is out or being judged, the loss of its own packets counts too
        # (they are RTX copies: the RTX stream's report block). Otherwise that block is
        # noise: it covers only the odd retransmission.
        probe_lost = 0
        if self.policy.probing_now and (rtx := aiortc_compat.rtx_ssrc_or_none(self.sender)):
            probe_lost = max((f for f, _ in aiortc_compat.report_blocks(packet, rtx)), default=0)
        for fraction_lost, jitter in blocks:
            self._count_sent(now)
            self.estimator.on_receiver_report(
                now,
                max(fraction_lost, probe_lost),
                jitter,
                VIDEO_CLOCK_RATE,
                aiortc_compat.rtt_ms(self.sender),
            )
        remb = aiortc_compat.remb_bps(packet, ssrc)
        if remb is not None:
            self.estimator.on_remb(now, remb)
        if blocks:
            self._decide(now)

    def _count_sent(self, now: float) -> None:
        octets = aiortc_compat.octets_sent(self.sender)
        if octets >= self._octets:
            self.estimator.on_sent(now, octets - self._octets)
        self._octets = octets

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            now = self.clock()
            self._count_sent(now)
            try:
                self._decide(now)
            except Exception:
                log.exception("congestion policy failed")

    # -- verdicts -----------------------------------------------------------------------
    def _decide(self, now: float) -> None:
        estimate = self.estimator.estimate()
        main, sub = self.main_kbps(), self.sub_kbps()
        if estimate is None or main is None or sub is None:
            return  # nothing measured yet, or no sub stream to choose
        # A stream nobody watches is not connected (rate 0): go on with its last rate.
        if main > 0:
            self._known_main = main
        if sub > 0:
            self._known_sub = sub
        policy = self.policy
        policy.main_kbps, policy.sub_kbps = self._known_main, self._known_sub
        pump = self.probe_sender()
        policy.probing = callable(getattr(pump, "send_probe", None))
        verdict = policy.update(now, estimate, on_main=self.feed.current == "main")
        if verdict is not None:
            self.verdicts.append((now, verdict))
            log.info(
                "viewer path %s: %s (loss %.1f %%, REMB %s kbit/s, RTT %s ms)",
                "carries the main stream" if verdict else "is congested",
                REASON_UP if verdict else REASON_DOWN,
                estimate.loss * 100,
                "?" if estimate.bitrate_kbps is None else round(estimate.bitrate_kbps),
                "?" if estimate.rtt_ms is None else round(estimate.rtt_ms),
            )
            self.feed.allow_main(verdict, REASON_UP if verdict else REASON_DOWN)
        probe = policy.take_probe(now)
        if probe is not None and pump is not None and self._prober is None:
            self.probes += 1
            self._prober = spawn(self._send_probe(pump, probe), "congestion-probe")

    async def _send_probe(self, pump: ProbeSender, probe: Probe) -> None:
        """`probe.kbps` more for `probe.duration_s`, in slices PROBE_SLICE_S apart."""
        try:
            slices = max(1, round(probe.duration_s / PROBE_SLICE_S))
            octets = int(probe.kbps * 1000 / 8 * probe.duration_s / slices)
            for _ in range(slices):
                with contextlib.suppress(ConnectionError, OSError):
                    pump.send_probe(octets)
                await asyncio.sleep(PROBE_SLICE_S)
        finally:
            self._prober = None

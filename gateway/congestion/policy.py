"""When may a viewer get the main stream? Hysteresis and probing over a PathEstimate.

Down fast, up slowly and only on evidence:
- down (`False`) when the smoothed loss stays above LOSS_DOWN for SUSTAIN_S (that is at
  least two receiver reports: they come every 0.5-1.5 s), or, once the viewer has been on
  the main stream long enough for the receiver's estimate to settle, when its REMB stays
  below half the main stream's bitrate without rising;
- up (`True`) only after the path has been clean (loss <= LOSS_CLEAN) for CLEAN_S AND a
  probe said it carries the main stream's rate: a short burst of extra packets at the
  main stream's rate (the glue sends it: RTX copies of recent packets), judged by the loss
  the reports show afterwards. A REMB can't say it: a receiver caps it at ~1.5x what it
  gets, so the sub stream's REMB never reaches the main stream's bitrate. Without probing
  (the fallback send path) the up-switch itself is the trial.
- An up-switch that is followed by congestion within TRIAL_S failed: the next attempt
  waits twice as long (BACKOFF_S doubling up to MAX_BACKOFF_S), as does a failed probe.
  That bounds both the flapping and the cost of probing a link that stays slow.
Pure: the caller passes the time in.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.congestion.estimator import PathEstimate


@dataclass(frozen=True)
class PolicySettings:
    loss_down: float = 0.05  # smoothed loss above this is congestion
    loss_clean: float = 0.01  # at or below this the path is clean
    sustain_s: float = 1.6  # congestion must last this long (>= two receiver reports)
    remb_down_ratio: float = 0.5  # REMB below this share of the main stream's bitrate ...
    remb_settle_s: float = 20.0  # ... counts once the viewer has been on main this long
    remb_still_s: float = 5.0  # ... and the REMB has not risen for this long (a REMB
    # still climbing after an up-switch is the receiver's estimate catching up, not a limit)
    clean_s: float = 5.0  # clean this long before trying the main stream again
    probe_s: float = 0.25  # a probe's length (longer than a slow link's buffer holds)
    judge_s: float = 2.5  # after a probe, wait this long for the reports that cover it
    probe_loss_ok: float = 0.02  # a probe passed if the loss stayed at or below this
    backoff_s: float = 5.0  # wait after a first failed attempt; doubles per failure
    max_backoff_s: float = 20.0  # keeps the recovery after a link heals within ~30 s
    trial_s: float = 10.0  # an up-switch that survives this long succeeded


@dataclass(frozen=True)
class Probe:
    """Send `kbps` more than now (on top of the current stream) for `duration_s`."""

    kbps: float
    duration_s: float


class StreamPolicy:
    """One viewer's verdict: may it have the main stream?"""

    def __init__(
        self,
        main_kbps: float,
        sub_kbps: float,
        *,
        probing: bool = True,
        settings: PolicySettings | None = None,
    ) -> None:
        self.main_kbps = main_kbps  # the glue keeps these current
        self.sub_kbps = sub_kbps
        self.probing = probing  # False: no probe can be sent, the up-switch is the trial
        self.settings = settings or PolicySettings()
        self.allowed = True
        self.changes = 0
        self.failures = 0  # failed probes and trials
        self._bad_since: float | None = None
        self._clean_since: float | None = None
        self._on_main_since: float | None = None
        self._remb: float | None = None  # the last REMB seen, and when it last rose
        self._remb_rose_at = 0.0
        self._next_try_at = 0.0
        self._backoff = self.settings.backoff_s
        self._trial_until: float | None = None
        self._probe_due = False
        self._probe_ends: float | None = None  # a probe is out (or being judged)
        self._probe_worst = 0.0

    @property
    def probing_now(self) -> bool:
        return self._probe_ends is not None

    def update(self, now: float, estimate: PathEstimate, on_main: bool) -> bool | None:
        """True: allow main, False: keep to sub, None: no change."""
        remb = estimate.bitrate_kbps
        if remb is not None and (self._remb is None or remb > self._remb):
            self._remb_rose_at = now
        self._remb = remb
        if on_main:
            self._on_main_since = now if self._on_main_since is None else self._on_main_since
        else:
            self._on_main_since = None
        if self.allowed:
            return self._while_allowed(now, estimate)
        return self._while_refused(now, estimate, on_main)

    def take_probe(self, now: float) -> Probe | None:
        """The probe to send now, if one is due (the caller sends it at once)."""
        if not self._probe_due:
            return None
        s = self.settings
        self._probe_due = False
        self._probe_ends = now + s.probe_s
        self._probe_worst = 0.0
        return Probe(kbps=max(self.main_kbps - self.sub_kbps, 0.0), duration_s=s.probe_s)

    # -- the two states -----------------------------------------------------------------
    def _while_allowed(self, now: float, estimate: PathEstimate) -> bool | None:
        s = self.settings
        if self._trial_until is not None and now >= self._trial_until:
            self._trial_until = None  # the main stream held: start afresh next time
            self._backoff = s.backoff_s
        if not self._congested(now, estimate):
            self._bad_since = None
            return None
        if self._bad_since is None:
            self._bad_since = now
        if now - self._bad_since < s.sustain_s:
            return None
        if self._trial_until is not None:  # up again too early: wait longer next time
            self._fail()
        self._trial_until = None
        self._next_try_at = now + self._backoff
        return self._change(now, False)

    def _while_refused(self, now: float, estimate: PathEstimate, on_main: bool) -> bool | None:
        s = self.settings
        if estimate.loss > s.loss_clean:
            self._clean_since = None
        elif self._clean_since is None:
            self._clean_since = now
        if self._probe_ends is not None:
            self._probe_worst = max(self._probe_worst, estimate.loss)
            if now < self._probe_ends + s.judge_s:
                return None
            self._probe_ends = None
            if self._probe_worst > s.probe_loss_ok:
                self._fail()
                self._next_try_at = now + self._backoff
                self._clean_since = None
                return None
            return self._up(now)
        ready = (
            self._clean_since is not None
            and now - self._clean_since >= s.clean_s
            and now >= self._next_try_at
        )
        if not ready:
            return None
        if on_main or not self.probing:  # the main stream itself is the test (or must be)
            return self._up(now)
        self._probe_due = True
        return None

    # -- helpers --------------------------------------------------------------------------
    def _congested(self, now: float, estimate: PathEstimate) -> bool:
        s = self.settings
        if estimate.loss > s.loss_down:
            return True
        settled = (
            self._on_main_since is not None
            and now - self._on_main_since >= s.remb_settle_s
            and now - self._remb_rose_at >= s.remb_still_s
        )
        return (
            settled
            and estimate.bitrate_kbps is not None
            and estimate.bitrate_kbps < s.remb_down_ratio * self.main_kbps
        )

    def _up(self, now: float) -> bool:
        self._trial_until = now + self.settings.trial_s
        return self._change(now, True)

    def _fail(self) -> None:
        self.failures += 1
        self._backoff = min(self._backoff * 2, self.settings.max_backoff_s)

    def _change(self, now: float, allowed: bool) -> bool:
        self.allowed = allowed
        self.changes += 1
        self._bad_since = None
        self._clean_since = None
        self._probe_due = False
        return allowed

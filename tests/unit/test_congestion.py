"""The path estimator and the main/sub stream policy, driven with simulated reports."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from gateway.congestion.estimator import PathEstimate, PathEstimator
from gateway.congestion.policy import PolicySettings, StreamPolicy

MAIN, SUB = 4000.0, 500.0
S = PolicySettings()


def _estimate(loss: float = 0.0, remb: float | None = None) -> PathEstimate:
    return PathEstimate(bitrate_kbps=remb, loss=loss, rtt_ms=20.0, jitter_ms=2.0)


def _run(
    policy: StreamPolicy,
    start: float,
    seconds: float,
    loss: float,
    remb: float | None = None,
    *,
    first_only: bool = False,
) -> list[tuple[float, bool]]:
    """Feed one estimate every 0.5 s (reports and the glue's tick); the verdicts. A due
    probe is taken at once, as the glue does; the viewer follows the verdict."""
    verdicts: list[tuple[float, bool]] = []
    t = start
    while t < start + seconds:
        verdict = policy.update(t, _estimate(loss, remb), on_main=policy.allowed)
        if verdict is not None:
            verdicts.append((t, verdict))
            if first_only:
                break
        policy.take_probe(t)
        t += 0.5
    return verdicts


# -- estimator --------------------------------------------------------------------------


def test_no_estimate_before_the_first_report() -> None:
    estimator = PathEstimator()
    estimator.on_remb(0.0, 1_000_000)
    estimator.on_sent(0.0, 1000)
    assert estimator.estimate() is None


def test_report_fields_become_the_estimate() -> None:
    estimator = PathEstimator()
    estimator.on_receiver_report(1.0, fraction_lost=64, jitter=900, clock_rate=90_000, rtt_ms=35.0)
    estimator.on_remb(1.1, 850_000)
    estimate = estimator.estimate()
    assert estimate == PathEstimate(bitrate_kbps=850.0, loss=0.25, rtt_ms=35.0, jitter_ms=10.0)
    assert estimate.to_json() == {
        "bitrate_kbps": 850,
        "loss": 0.25,
        "rtt_ms": 35.0,
        "jitter_ms": 10.0,
    }


def test_loss_is_smoothed_over_reports() -> None:
    estimator = PathEstimator()
    estimator.on_receiver_report(1.0, 0, 0, 90_000, None)
    estimator.on_receiver_report(2.0, 128, 0, 90_000, None)  # one bad report: half way
    estimate = estimator.estimate()
    assert estimate is not None and estimate.loss == 0.25
    assert estimate.rtt_ms is None  # not measured yet


def test_a_report_counts_for_the_time_it_covers() -> None:
    estimator = PathEstimator()
    estimator.on_receiver_report(1.0, 0, 0, 90_000, None)
    estimator.on_receiver_report(1.01, 128, 0, 90_000, None)  # 10 ms later: barely moves it
    estimate = estimator.estimate()
    assert estimate is not None and 0.0 < estimate.loss < 0.01
    estimator.on_receiver_report(4.01, 128, 0, 90_000, None)  # after 3 s: nearly all of it
    estimate = estimator.estimate()
    assert estimate is not None and 0.43 < estimate.loss < 0.5


def test_chromiums_reports_under_loss_move_the_viewer_down() -> None:
    """Under loss Chromium sends a report with every NACK, ~60 a second: one saying ~90 %
    lost, then several saying none (the retransmissions filled the holes). They are a
    congested link, not a clean one."""
    estimator, policy = PathEstimator(), StreamPolicy(MAIN, SUB)
    verdicts = []
    for i, fraction in enumerate(itertools.islice(itertools.cycle([230, 0, 0, 0, 0, 0]), 300)):
        now = 10.0 + i * 0.015
        estimator.on_receiver_report(now, fraction, 900, 90_000, 150.0)
        estimate = estimator.estimate()
        assert estimate is not None and estimate.loss > S.loss_down, (i, estimate)
        verdict = policy.update(now, estimate, on_main=policy.allowed)
        if verdict is not None:
            verdicts.append((now, verdict))
    ((at, verdict),) = verdicts
    assert verdict is False and at <= 10.0 + S.sustain_s + 0.6


def test_sent_rate_over_the_window() -> None:
    estimator = PathEstimator()
    for i in range(40):  # 500 kbit/s: 62500 octets per second in 10 sends
        estimator.on_sent(i * 0.1, 6250)
    assert 450 <= estimator.sent_kbps(4.0) <= 550
    assert estimator.sent_kbps(10.0) == 0.0


@given(
    st.lists(
        st.tuples(st.integers(-10, 300), st.integers(-5, 10**6), st.integers(0, 200_000)),
        min_size=1,
        max_size=50,
    )
)
def test_any_reports_give_a_sane_estimate(reports: list[tuple[int, int, int]]) -> None:
    estimator = PathEstimator()
    for i, (fraction, jitter, clock) in enumerate(reports):
        estimator.on_receiver_report(float(i), fraction, jitter, clock, None)
    estimate = estimator.estimate()
    assert estimate is not None and 0.0 <= estimate.loss < 1.0
    assert estimate.jitter_ms is None or estimate.jitter_ms >= 0


# -- policy -----------------------------------------------------------------------------


def test_sustained_loss_moves_down_within_two_reports() -> None:
    policy = StreamPolicy(MAIN, SUB)
    assert _run(policy, 0.0, 30.0, loss=0.0) == []
    ((at, verdict),) = _run(policy, 30.0, 5.0, loss=0.3)
    assert verdict is False and 30.0 + S.sustain_s <= at <= 30.0 + S.sustain_s + 0.5


def test_one_bad_report_is_not_congestion() -> None:
    policy = StreamPolicy(MAIN, SUB)
    assert _run(policy, 0.0, 1.0, loss=0.08) == []  # shorter than sustain_s
    assert _run(policy, 1.0, 60.0, loss=0.0) == []


def test_low_remb_moves_down_only_once_settled_on_main() -> None:
    policy = StreamPolicy(MAIN, SUB)
    assert _run(policy, 0.0, S.remb_settle_s - 1, loss=0.0, remb=900) == []
    verdicts = _run(policy, S.remb_settle_s - 1, 5.0, loss=0.0, remb=900)
    assert [v for _, v in verdicts] == [False]


def test_a_climbing_remb_is_not_congestion() -> None:
    """After an up-switch the receiver's estimate climbs from what the sub stream had
    (receivers cap it at ~1.5x what they get) for longer than the settling time."""
    policy = StreamPolicy(MAIN, SUB)
    for i in range(120):
        remb = 750 * 1.02 ** (i // 2)  # +2 % a second: below half of main for ~50 s
        assert policy.update(i * 0.5, _estimate(0.0, remb), on_main=True) is None


def test_recovers_after_clean_period_and_a_passing_probe() -> None:
    policy = StreamPolicy(MAIN, SUB)
    _run(policy, 0.0, 5.0, loss=0.3)
    assert not policy.allowed
    t = 5.0
    probe = None
    while probe is None and t < 60:
        assert policy.update(t, _estimate(0.0), on_main=False) is None
        probe = policy.take_probe(t)
        t += 0.5
    assert probe is not None and probe.kbps == MAIN - SUB
    assert t - 5.0 >= S.clean_s  # not before the path was clean that long
    verdicts = _run(policy, t, 10.0, loss=0.0)
    assert verdicts == [(verdicts[0][0], True)] and verdicts[0][0] >= t + S.probe_s


def test_failed_probes_back_off_and_never_switch_up() -> None:
    policy = StreamPolicy(MAIN, SUB)
    _run(policy, 0.0, 5.0, loss=0.3)
    probes: list[float] = []
    t = 5.0
    while t < 300:
        policy.update(t, _estimate(0.0), on_main=False)
        if policy.take_probe(t) is not None:
            probes.append(t)
            for _ in range(4):  # the reports that cover the probe show its loss
                t += 0.5
                assert policy.update(t, _estimate(0.2), on_main=False) is None
        t += 0.5
    assert not policy.allowed and policy.changes == 1
    gaps = [b - a for a, b in itertools.pairwise(probes)]
    assert gaps == sorted(gaps)  # never more often than before
    assert gaps[-1] <= S.max_backoff_s + S.clean_s + S.judge_s + 3
    assert len(probes) <= 300 / S.max_backoff_s + 3  # bounded cost on a slow link


def test_a_failed_trial_doubles_the_wait() -> None:
    policy = StreamPolicy(MAIN, SUB, probing=False)  # the fallback send path: trials
    _run(policy, 0.0, 5.0, loss=0.3)
    ups: list[float] = []
    t = 5.0
    for _ in range(4):
        verdicts = _run(policy, t, 60.0, loss=0.0, first_only=True)
        assert verdicts and verdicts[0][1] is True
        ups.append(verdicts[0][0])
        t = verdicts[0][0] + 0.5
        down = _run(policy, t, 3.0, loss=0.3, first_only=True)  # the trial fails at once
        assert [v for _, v in down] == [False]
        t = down[0][0] + 0.5
    waits = [b - a for a, b in itertools.pairwise(ups)]
    assert waits[0] < waits[1] and waits[-1] <= S.max_backoff_s + S.clean_s + 5


def test_pinned_main_recovers_without_a_probe() -> None:
    policy = StreamPolicy(MAIN, SUB)
    _run(policy, 0.0, 5.0, loss=0.3)
    t, verdict = 5.0, None
    while verdict is None:
        verdict = policy.update(t, _estimate(0.0), on_main=True)
        assert policy.take_probe(t) is None
        t += 0.5
    assert verdict is True


@given(st.lists(st.floats(0.0, 0.01), min_size=10, max_size=400))
def test_a_clean_path_never_changes_the_verdict(losses: list[float]) -> None:
    policy = StreamPolicy(MAIN, SUB)
    for i, loss in enumerate(losses):
        assert policy.update(i * 0.5, _estimate(loss, remb=MAIN * 1.2), on_main=True) is None


@given(st.lists(st.floats(0.0, 1.0), min_size=10, max_size=600))
def test_never_flaps_whatever_the_reports(losses: list[float]) -> None:
    """However the loss jumps, two up-switches are never closer than clean_s apart and
    every down-switch needed sustain_s of congestion."""
    policy = StreamPolicy(MAIN, SUB)
    changes: list[tuple[float, bool]] = []
    for i, loss in enumerate(losses):
        t = i * 0.5
        verdict = policy.update(t, _estimate(loss), on_main=policy.allowed)
        policy.take_probe(t)
        if verdict is not None:
            assert (not changes or changes[-1][1] != verdict) and verdict == policy.allowed
            changes.append((t, verdict))
    ups = [t for t, v in changes if v]
    assert all(b - a >= S.clean_s for a, b in itertools.pairwise(ups))
    if changes:
        assert changes[0][0] >= S.sustain_s

"""Small order statistics."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, median, p90, p99 and max, rounded for the report."""

    def rounded(x: float | None) -> float | None:
        return None if x is None else round(x, 2)

    return {
        "n": len(values),
        "p50": rounded(percentile(values, 50)),
        "p90": rounded(percentile(values, 90)),
        "p99": rounded(percentile(values, 99)),
        "max": rounded(max(values) if values else None),
    }


def latency_table(title: str, rows: Sequence[tuple[str, dict]], label_width: int = 30) -> list[str]:
    """Report lines: a title, a header, then n / p50 / p90 / p99 / max of each summary."""
    lines = [title, f"{'':{label_width}} {'n':>5} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}"]
    for label, s in rows:
        values = " ".join(
            f"{s[k]:>7.2f}" if s[k] is not None else f"{'-':>7}"
            for k in ("p50", "p90", "p99", "max")
        )
        lines.append(f"{label:{label_width}} {s['n']:>5} {values}")
    return lines

"""The viewer-scaling curve of a `python -m bench` run as a PNG (docs/benchmarks.md).

    python -m bench.plot bench-results.json docs/images/fanout.png

Needs matplotlib (`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def plot(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display
    import matplotlib.pyplot as plt

    figure, (cpu_axis, rss_axis) = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    labels = {"camgate": "camgate", "baseline": "aiortc MediaPlayer + MediaRelay"}
    for kind, points in results["capacity"].items():
        viewers = [p["viewers"] for p in points]
        cpu_axis.plot(viewers, [p["gateway_cpu"] for p in points], "o-", label=labels[kind])
        rss_axis.plot(viewers, [p["gateway_rss_mb"] for p in points], "o-", label=labels[kind])
    m = results["machine"]
    figure.suptitle(
        f"1080p30 ~4 Mbit/s, non-decoding viewers — {m['date']}, {m['nproc']} x {m['cpu_model']}",
        fontsize=9,
    )
    cpu_axis.set(xlabel="viewers", ylabel="gateway CPU, % of one core", title="CPU")
    rss_axis.set(xlabel="viewers", ylabel="gateway RSS, MB", title="Memory")
    for axis in (cpu_axis, rss_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    plot(json.loads(Path(args[0]).read_text()), Path(args[1]))
    print(f"wrote {args[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m bench [--quick] [--out FILE.json]`: the camgate benchmark.

Re-executes itself in a fresh network namespace (unshare --net; root) holding only lo,
runs every measurement, prints the table and writes the JSON results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from bench.netns import bring_up_loopback, in_private_netns, reexec_in_netns
from bench.procs import BENCH_NICE

# The whole run is bounded even if something hangs (full run: ~10 min).
RUN_TIMEOUT_S = 30 * 60


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~3 minute smoke run")
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"), metavar="FILE.json")
    parser.add_argument(
        "--viewers",
        metavar="N,N,...",
        help="viewer counts of the capacity curve (default 0,1,4,16), e.g. 1,4,16,32,48",
    )
    parser.add_argument(
        "--capacity-only", action="store_true", help="only the capacity curve (no TTFF)"
    )
    parser.add_argument(
        "--send-workers",
        type=int,
        default=0,
        metavar="N",
        help="camgate's webrtc.send_workers (its CPU then counts the workers too)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not in_private_netns():
        reexec_in_netns()  # does not return
    bring_up_loopback()
    with contextlib.suppress(OSError):  # inherited by every child, Chromium included
        os.setpriority(os.PRIO_PROCESS, 0, BENCH_NICE)
    from bench.report import render
    from bench.run import BenchSettings, run

    settings = BenchSettings.quick_settings() if args.quick else BenchSettings()
    if args.viewers:
        counts = tuple(int(n) for n in args.viewers.split(","))
        settings = replace(settings, capacity=replace(settings.capacity, viewer_counts=counts))
    if args.send_workers:
        settings = replace(
            settings, capacity=replace(settings.capacity, send_workers=args.send_workers)
        )
    if args.capacity_only:
        settings = replace(settings, capacity_only=True)
    try:
        results = asyncio.run(asyncio.wait_for(run(settings), RUN_TIMEOUT_S))
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(render(results))
    print(f"\nresults: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Soak: camgate with a few viewers for a long time; does memory stay flat?

    python -m bench.soak [--minutes 60] [--viewers 4] [--interval 30] [--out FILE.json]
    python -m bench.soak --minutes 10                      # the quick check

As root, in its own network namespace holding only lo (like `python -m bench`): the
benchmark camera (1080p30 ~4 Mbit/s, GStreamer RTSP) -> camgate (`camgate --config`, a
child process) -> non-decoding aiortc viewers. Every interval it samples camgate's RSS
and CPU and the viewers' frame counts. Passes (exit 0) when RSS growth after warm-up is
below 5 % and the viewers lost under 1 % of frames.

RSS growth = (mean of the last 3 samples - the first sample after warm-up) / that sample.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.clip import ClipSpec, ensure_clip
from bench.cpu import cpu_seconds, rss_mb
from bench.machine import machine_facts
from bench.netns import bring_up_loopback, in_private_netns, reexec_in_netns
from bench.procs import RIG_CPUS, Children, venv_python
from bench.targets import CAMGATE, start_camera, start_target

MAX_RSS_GROWTH_PCT = 5.0
MAX_FRAME_LOSS_PCT = 1.0


@dataclass(frozen=True)
class SoakSettings:
    minutes: float = 60.0
    viewers: int = 4
    interval_s: float = 30.0
    warmup_minutes: float = 5.0  # allocator pools, caches and JIT-free Python settle


@dataclass(frozen=True)
class Sample:
    at_s: float  # since the viewers joined
    rss_mb: float
    cpu_percent: float  # of one core, over the interval
    frames_expected: int
    frames_complete: int


async def soak(settings: SoakSettings, run_dir: Path) -> dict[str, Any]:
    samples: list[Sample] = []
    async with Children(run_dir) as children:
        _camera, rtsp_url = await start_camera(children, ensure_clip(ClipSpec(gop_frames=60)))
        target = await start_target(children, CAMGATE, rtsp_url, run_dir)
        receivers = await children.spawn(
            "receivers",
            [venv_python(), "-m", "bench.receivers", "--whep", target.whep_url],
            pipe_stdio=True,
            cpus=RIG_CPUS,
        )
        await receivers.send_json({"cmd": "add", "count": settings.viewers, "timeout": 30})
        joined = await receivers.read_json(60)
        if joined.get("errors") or joined["receiving"] != settings.viewers:
            raise RuntimeError(f"viewers failed to join: {joined}")
        pid = target.child.pid
        started = time.monotonic()
        end = started + settings.minutes * 60
        last_cpu, last_at = cpu_seconds(pid), started
        await receivers.send_json({"cmd": "start"})
        await receivers.read_json(10)
        while time.monotonic() < end:
            await asyncio.sleep(min(settings.interval_s, max(0.0, end - time.monotonic())))
            await receivers.send_json({"cmd": "stop"})  # ends one window, the next begins
            window = await receivers.read_json(30)
            await receivers.send_json({"cmd": "start"})
            await receivers.read_json(10)
            now, cpu = time.monotonic(), cpu_seconds(pid)
            viewers = window["viewers"]
            sample = Sample(
                at_s=round(now - started, 1),
                rss_mb=round(rss_mb(pid), 1),
                cpu_percent=round(100 * (cpu - last_cpu) / (now - last_at), 2),
                frames_expected=sum(v["expected"] for v in viewers),
                frames_complete=sum(min(v["complete"], v["expected"]) for v in viewers),
            )
            last_cpu, last_at = cpu, now
            samples.append(sample)
            print(json.dumps(asdict(sample)), flush=True)
        await receivers.send_json({"cmd": "close"})
        await receivers.read_json(30)
    return {
        "machine": machine_facts(),
        "settings": asdict(settings),
        "samples": [asdict(s) for s in samples],
        "summary": summarise(samples, settings),
    }


def summarise(samples: list[Sample], settings: SoakSettings) -> dict[str, Any]:
    warm = [s for s in samples if s.at_s >= settings.warmup_minutes * 60] or samples[-1:]
    baseline = warm[0].rss_mb
    end = statistics.fmean(s.rss_mb for s in samples[-3:])
    growth = 100 * (end - baseline) / baseline
    expected = sum(s.frames_expected for s in samples)
    complete = sum(s.frames_complete for s in samples)
    loss = 100 * (expected - complete) / expected if expected else 100.0
    return {
        "rss_start_mb": samples[0].rss_mb,
        "rss_after_warmup_mb": baseline,
        "rss_end_mb": round(end, 1),
        "rss_max_mb": max(s.rss_mb for s in samples),
        "rss_growth_after_warmup_pct": round(growth, 2),
        "cpu_mean_percent": round(statistics.fmean(s.cpu_percent for s in samples), 2),
        "cpu_max_percent": max(s.cpu_percent for s in samples),
        "frames_expected": expected,
        "frame_loss_pct": round(loss, 3),
        "passed": growth < MAX_RSS_GROWTH_PCT and loss < MAX_FRAME_LOSS_PCT,
    }


def render_lines(result: dict[str, Any]) -> list[str]:
    s, settings = result["summary"], result["settings"]
    return [
        f"soak: {settings['viewers']} viewers, {settings['minutes']:g} min, "
        f"{len(result['samples'])} samples",
        f"RSS: start {s['rss_start_mb']} MB, after {settings['warmup_minutes']:g} min warm-up "
        f"{s['rss_after_warmup_mb']} MB, end {s['rss_end_mb']} MB, max {s['rss_max_mb']} MB: "
        f"growth {s['rss_growth_after_warmup_pct']:+.2f} % (limit {MAX_RSS_GROWTH_PCT:g} %)",
        f"CPU: mean {s['cpu_mean_percent']} %, max {s['cpu_max_percent']} % of one core",
        f"frames: {s['frames_expected']} expected, loss {s['frame_loss_pct']} % "
        f"(limit {MAX_FRAME_LOSS_PCT:g} %)",
        f"verdict: {'PASSED' if s['passed'] else 'FAILED'}",
    ]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=SoakSettings.minutes)
    parser.add_argument("--viewers", type=int, default=SoakSettings.viewers)
    parser.add_argument("--interval", type=float, help="seconds between samples")
    parser.add_argument("--out", type=Path, default=Path("bench-soak.json"))
    args = parser.parse_args(argv)
    if not in_private_netns():
        reexec_in_netns("bench.soak", argv)
    bring_up_loopback()
    # Short runs sample more often and warm up for a fifth of the run (5 min at most).
    interval = args.interval or (30.0 if args.minutes >= 30 else 10.0)
    settings = SoakSettings(
        minutes=args.minutes,
        viewers=args.viewers,
        interval_s=interval,
        warmup_minutes=min(5.0, args.minutes / 5),
    )
    run_dir = Path(tempfile.mkdtemp(prefix="camgate-soak-"))
    result = asyncio.run(soak(settings, run_dir))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(render_lines(result)))
    print(f"\nresults: {args.out} (logs in {run_dir})")
    return 0 if result["summary"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

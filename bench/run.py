"""The whole benchmark, in order: clips, rig floor, capacity (camgate, baseline), then
time to first frame at each GOP length. Returns one JSON-able dict."""

from __future__ import annotations

import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.capacity import CapacityPoint, CapacitySettings, combine, measure_capacity
from bench.clip import CACHE_DIR, ClipSpec, ensure_clip
from bench.machine import machine_facts
from bench.procs import BENCH_NICE, RIG_CPUS, TARGET_CPUS, Child, Children, venv_python
from bench.targets import BASELINE, CAMGATE, start_camera, start_target
from bench.ttff import Chromium, PageServer, TtffResult, TtffSettings, measure_ttff

TARGETS = (CAMGATE, BASELINE)


@dataclass(frozen=True)
class BenchSettings:
    quick: bool = False
    capacity: CapacitySettings = field(default_factory=CapacitySettings)
    ttff: TtffSettings = field(default_factory=TtffSettings)
    gop_frames: tuple[int, ...] = (60, 120)  # 2 s and 4 s at 30 fps
    capacity_gop_frames: int = 60
    floor_s: float = 8.0
    seed: int = 1
    capacity_only: bool = False  # the viewer-scaling curve without time to first frame

    @classmethod
    def quick_settings(cls) -> BenchSettings:
        return cls(
            quick=True,
            capacity=CapacitySettings(settle_s=2.0, window_s=5.0, rounds=1),
            ttff=TtffSettings(joins=4),
            floor_s=4.0,
        )


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def run(settings: BenchSettings) -> dict[str, Any]:
    started = time.monotonic()
    results: dict[str, Any] = {
        "machine": machine_facts(),
        "settings": asdict(settings),
        "placement": {
            "target_cpus": sorted(TARGET_CPUS),
            "rig_cpus": sorted(RIG_CPUS),
            "nice": BENCH_NICE,
        },
        "stream": {},
        "floor": None,
        "capacity": {},
        "capacity_rounds": {},
        "ttff": [],
    }
    run_dir = Path(tempfile.mkdtemp(prefix="camgate-bench-"))
    progress(f"logs in {run_dir}")
    rng = random.Random(settings.seed)
    gops = (settings.capacity_gop_frames,) if settings.capacity_only else settings.gop_frames
    for gop in gops:
        spec = ClipSpec(gop_frames=gop)
        progress(f"clip: GOP {spec.gop_s:g} s (cache: {CACHE_DIR})")
        clip = ensure_clip(spec)
        results["stream"][f"gop_{spec.gop_s:g}s"] = _stream_facts(spec, clip)
    async with Children(run_dir) as children, PageServer() as pages:
        for gop in gops:
            spec = ClipSpec(gop_frames=gop)
            camera, rtsp_url = await start_camera(children, ensure_clip(spec))
            progress(f"camera up: {rtsp_url}, GOP {spec.gop_s:g} s")
            if gop == settings.capacity_gop_frames:
                progress("rig floor: camera -> RTSP client")
                results["floor"] = await _floor(children, rtsp_url, settings.floor_s)
                rounds = await _capacity_rounds(children, camera, rtsp_url, run_dir, settings)
                results["capacity_rounds"] = {
                    kind: [[p.as_dict() for p in r] for r in kind_rounds]
                    for kind, kind_rounds in rounds.items()
                }
                results["capacity"] = {
                    kind: [combine(list(points)) for points in zip(*kind_rounds, strict=True)]
                    for kind, kind_rounds in rounds.items()
                }
            for kind in () if settings.capacity_only else TARGETS:
                progress(f"{kind}: time to first frame, GOP {spec.gop_s:g} s")
                target = await start_target(children, kind, rtsp_url, run_dir)
                try:
                    ttff = await _ttff(pages, target.whep_url, kind, spec, settings, rng)
                finally:
                    await children.stop(target.child)
                results["ttff"].append(ttff.as_dict())
            await children.stop(camera)
    results["duration_s"] = round(time.monotonic() - started, 1)
    return results


async def _capacity_rounds(
    children: Children, camera: Child, rtsp_url: str, run_dir: Path, settings: BenchSettings
) -> dict[str, list[list[CapacityPoint]]]:
    """Capacity rounds in ABBA order, a fresh target process each round."""
    rounds: dict[str, list[list[CapacityPoint]]] = {kind: [] for kind in TARGETS}
    for n in range(settings.capacity.rounds):
        for kind in TARGETS if n % 2 == 0 else TARGETS[::-1]:
            progress(f"{kind}: capacity {settings.capacity.viewer_counts}, round {n + 1}")
            workers = settings.capacity.send_workers if kind == CAMGATE else 0
            target = await start_target(children, kind, rtsp_url, run_dir, send_workers=workers)
            try:
                points = await measure_capacity(children, target, camera, settings.capacity)
            finally:
                await children.stop(target.child)
            rounds[kind].append(points)
    return rounds


async def _ttff(
    pages: PageServer,
    whep_url: str,
    kind: str,
    spec: ClipSpec,
    settings: BenchSettings,
    rng: random.Random,
) -> TtffResult:
    async with Chromium() as chromium:
        return await measure_ttff(
            chromium, pages.url, kind, whep_url, spec.gop_s, settings.ttff, rng
        )


def _stream_facts(spec: ClipSpec, clip: Path) -> dict[str, Any]:
    seconds = spec.frames / spec.fps
    return {
        "resolution": f"{spec.width}x{spec.height}",
        "fps": spec.fps,
        "profile": "High 4.0, no B-frames",
        "gop_s": spec.gop_s,
        "mbit_s": round(clip.stat().st_size * 8 / seconds / 1e6, 2),
    }


async def _floor(children: Children, rtsp_url: str, seconds: float) -> dict[str, Any]:
    probe: Child = await children.spawn(
        "floor",
        [venv_python(), "-m", "bench.floor", "--url", rtsp_url, "--seconds", str(seconds)],
        pipe_stdio=True,
        cpus=RIG_CPUS,
    )
    try:
        return (await probe.read_json(seconds + 30))["latency_ms"]
    finally:
        await children.stop(probe)

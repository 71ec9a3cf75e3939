"""What a Pi 5 pays for the Pi camera's sub stream: the CPU of picamera2's software H.264
encoder (LibavH264Encoder: libx264 through PyAV) for the main stream alone, and for the
main and the sub stream together, from one camera.

    python -m bench.picamera_substream [--seconds 20] [--out FILE.json]

Runs the REAL picamera2 as on a Pi 5 (tests/rig/picamera2_rig.py: only libcamera, the DMA
heap and the Pi model probe are stand-ins) through camgate's PicameraSource and
PicameraSubSource at the defaults (1280x720@30 at 3 Mbit/s, sub 640x360 at 0.5 Mbit/s).
CPU = this process's CPU seconds per second of video (every thread), scaled to 30 fps when
a loaded machine delivered fewer. The simulated sensor paints each buffer with numpy, which
a Pi's ISP does in hardware (both runs paint the low-resolution buffer too). Second, less
noisy: libx264 alone with LibavH264Encoder's options (preset superfast for the main
profile, tune zerolatency), encoding 10 s of a test pattern at each size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any


async def cpu_per_second(seconds: float, with_sub: bool) -> dict[str, Any]:
    from gateway.sources.picamera import (
        PicameraDevice,
        PicameraSettings,
        PicameraSource,
        PicameraSubSource,
    )

    settings = PicameraSettings()
    device = PicameraDevice(settings)
    counts = {"main": 0, "sub": 0}

    def counter(stream: str) -> Any:
        def count(_unit: Any) -> None:
            counts[stream] += 1

        return count

    tasks = [asyncio.create_task(PicameraSource(settings, device).run(counter("main")))]
    if with_sub:
        sub = PicameraSubSource(settings, device)
        tasks.append(asyncio.create_task(sub.run(counter("sub"))))
    try:
        while counts["main"] < 30 or (with_sub and counts["sub"] < 30):  # warmed up
            await asyncio.sleep(0.1)
        frames = dict(counts)
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        frames = {k: counts[k] - frames[k] for k in counts}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    fps = {k: v / wall for k, v in frames.items()}
    return {"cpu_per_s": cpu / wall * 30 / max(fps["main"], 1.0), "fps": fps}


def encoder_cpu_per_s(width: int, height: int, bitrate: int, frames: int = 300) -> float:
    """CPU seconds libx264 takes per second of 30 fps video, as picamera2 sets it up."""
    from fractions import Fraction

    import av

    container = av.open("/dev/null", "w", format="null")
    stream: Any = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.profile = "Main"
    stream.codec_context.bit_rate = bitrate
    stream.codec_context.gop_size = 60
    stream.codec_context.time_base = Fraction(1, 1_000_000)
    stream.codec_context.options = {"preset": "superfast", "tune": "zerolatency", "deblock": "1"}
    pattern = av.open(f"testsrc2=size={width}x{height}:rate=30", format="lavfi")
    decoded = zip(range(frames), pattern.decode(video=0), strict=False)
    pictures = [picture.reformat(format="yuv420p") for _, picture in decoded]
    pattern.close()
    started = time.process_time()
    for n, picture in enumerate(pictures):
        picture.pts, picture.time_base = n * 33_333, Fraction(1, 1_000_000)
        stream.encode(picture)
    stream.encode(None)
    used = time.process_time() - started
    container.close()
    return used / (frames / 30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.picamera_substream", description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=Path("bench-picamera-substream.json"))
    args = parser.parse_args(argv)
    from tests.rig import picamera2_rig

    results = {}
    for name, with_sub in (("main", False), ("main+sub", True)):
        with picamera2_rig.loaded("pisp"):
            results[name] = asyncio.run(cpu_per_second(args.seconds, with_sub))
        print(
            f"{name:9} CPU {results[name]['cpu_per_s'] * 100:5.1f} % of one core, "
            f"fps {results[name]['fps']}"
        )
    extra = results["main+sub"]["cpu_per_s"] - results["main"]["cpu_per_s"]
    print(f"the sub stream adds {extra * 100:.1f} % of one core")
    for label, size in (
        ("1280x720 3 Mbit/s", (1280, 720, 3_000_000)),
        ("640x360 0.5 Mbit/s", (640, 360, 500_000)),
    ):
        runs = [encoder_cpu_per_s(*size) for _ in range(3)]
        results[f"libx264 {label}"] = {"cpu_per_s": runs}
        shown = " / ".join(f"{r * 100:.1f}" for r in runs)
        print(f"libx264 alone, {label}: {shown} % of one core")
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

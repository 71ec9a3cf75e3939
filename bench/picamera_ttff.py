"""Time to first frame from a Pi camera: a fresh keyframe per new viewer (camgate's way for
sources that can make one) against serving the cached GOP (the way for RTSP cameras).

    python -m bench.picamera_ttff [--joins 20] [--iperiod 60] [--out FILE.json]

Runs in its own network namespace (root). The camera is the tests' picamera2 stand-in
(tests/rig/fake_picamera2: real H.264 from libx264 on an encoder thread, the same
force_key_frame() contract); viewers are decoding aiortc peers joining one at a time at
random points of the keyframe interval. TTFF = WHEP POST -> first decoded picture.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from pathlib import Path
from typing import Any

from bench.netns import bring_up_loopback, in_private_netns, reexec_in_netns
from bench.stats import latency_table, summary
from tests.rig.net import free_port

FAKE_DIR = Path(__file__).parents[1] / "tests" / "rig" / "fake_picamera2"


async def measure(joins: int, iperiod: int, fresh: bool, seed: int) -> list[float]:
    from gateway.app import Gateway
    from gateway.config import parse_config
    from gateway.sources.picamera import PicameraSource
    from tests.rig.whep_client import WhepViewer

    PicameraSource.fresh_keyframes = fresh
    port = free_port()
    config = {
        "listen": f"127.0.0.1:{port}",
        "auth": False,
        "webrtc": {"candidates": {"addresses": ["127.0.0.1"]}},
        "cameras": [
            {
                "name": "pi",
                "preload": True,
                "picamera": {"width": 1280, "height": 720, "iperiod": iperiod},
            }
        ],
    }
    gateway = Gateway.from_config(parse_config(json.dumps(config)))
    await gateway.start()
    rng = random.Random(seed)
    times: list[float] = []
    try:
        await gateway.hubs["pi"].wait_live(30)
        for _ in range(joins):
            await asyncio.sleep(rng.uniform(0.2, iperiod / 30))  # somewhere in the GOP
            viewer = WhepViewer(f"http://127.0.0.1:{port}", "pi", decode=True)
            try:
                await viewer.start()
                await viewer.wait_frames(1, timeout=30)
                assert viewer.time_to_first_frame is not None
                times.append(viewer.time_to_first_frame * 1000)
            finally:
                await viewer.close()
    finally:
        await gateway.stop()
    return times


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.picamera_ttff", description=__doc__)
    parser.add_argument("--joins", type=int, default=20)
    parser.add_argument("--iperiod", type=int, default=60, help="frames between keyframes")
    parser.add_argument("--out", type=Path, default=Path("bench-picamera-ttff.json"))
    args = parser.parse_args(argv)
    if not in_private_netns():
        reexec_in_netns("bench.picamera_ttff", argv)
    bring_up_loopback()
    sys.path[:0] = [str(FAKE_DIR), str(FAKE_DIR.parent / "fake_libcamera")]
    results: dict[str, Any] = {"joins": args.joins, "iperiod": args.iperiod}
    for label, fresh in (("fresh_keyframe", True), ("cached_gop", False)):
        times = asyncio.run(measure(args.joins, args.iperiod, fresh, seed=1))
        results[label] = summary(times)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    title = f"Pi camera time to first frame (ms), keyframe every {args.iperiod} frames"
    rows = [
        ("fresh keyframe per viewer", results["fresh_keyframe"]),
        ("cached GOP", results["cached_gop"]),
    ]
    print("\n".join(latency_table(title, rows)))
    print(f"\nresults: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The rig's own latency floor: camera send -> whole frame in an RTSP client.

Uses camgate's own RTSP client (gateway.sources.rtsp) with nothing behind it, so
`transit - floor` is what the hub, the WebRTC send path and the receiver add.

    python -m bench.floor --url rtsp://127.0.0.1:8554/cam --seconds 8   (prints JSON)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time

from bench.sei import read_stamp
from bench.stats import summary
from gateway.media.accessunit import AccessUnit
from gateway.media.h264 import NAL_SEI, nal_type
from gateway.sources.rtsp import RtspSource


async def measure(url: str, seconds: float, warmup_s: float = 1.0) -> list[float]:
    latencies: list[float] = []
    start = time.monotonic()

    def on_unit(unit: AccessUnit) -> None:
        now_ns = time.time_ns()
        if time.monotonic() - start < warmup_s:
            return  # the first frames were queued in the camera before PLAY
        for nal in unit.nals:
            stamp = read_stamp(nal) if nal_type(nal) == NAL_SEI else None
            if stamp is not None:
                latencies.append((now_ns - stamp[0]) / 1e6)
                return

    task = asyncio.create_task(RtspSource(url, transport="tcp").run(on_unit))
    try:
        await asyncio.wait({task}, timeout=seconds + warmup_s)
        if task.done():
            task.result()  # the source failed: raise its error
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description="camera -> RTSP client latency floor")
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    latencies = asyncio.run(measure(args.url, args.seconds))
    print(json.dumps({"event": "floor", "latency_ms": summary(latencies)}), flush=True)


if __name__ == "__main__":
    main()

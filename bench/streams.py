"""Main and sub streams: how fast a viewer switches, what a grid of nine costs the viewer's
link, and what the switching layer costs camgate per viewer.

    python -m bench.streams [--switches 40] [--cameras 9] [--viewers 16] [--window 15]
                            [--out FILE.json]

Re-executes itself in a fresh network namespace holding only lo (root). One GStreamer RTSP
server (tests/rig/rtsp_server.py, encoding on as real cameras do: no restart per client)
serves a main stream (1280x720) and a sub stream (320x180); every camera of the config
points at both, so camgate keeps one upstream per camera and stream as it would with
real cameras. camgate runs in this process; viewers run in child processes:

- Switch time: an aiortc viewer (decoding) starts in grid view, then alternates full and
  grid on the "stream" data channel; from sending the message to the first decoded
  picture of the other size. The first switch to full view is reported apart (cold: the
  main stream connects first); the rest are warm. Target p50 <= 300 ms.
- Grid of nine: one viewer process opens a session per camera, all in grid view, then
  all in full view; the H.264 it receives (bytes of whole pictures) over a window.
- CPU per viewer: N viewers (not decoding) of one camera, in full view, with the switching
  layer (gateway/feed.py) and with a bare subscription in its place, alternating; camgate's
  process CPU per viewer over a window of each. Target: the layer adds <= 10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.netns import bring_up_loopback, in_private_netns, reexec_in_netns
from bench.procs import RIG_CPUS, Children, venv_python
from bench.stats import summary
from tests.rig.net import free_port

MAIN = (1280, 720, 2500)  # width, height, kbit/s
SUB = (320, 180, 300)
FPS = 25
GOP = 50  # 2 s, a common camera setting
TARGET_SWITCH_P50_MS = 300.0
TARGET_LAYER_COST = 0.10  # at most 10 % more CPU per viewer


# --- the children: viewers ------------------------------------------------------------------


async def _switcher_main(base_url: str, switches: int) -> None:
    """One decoding viewer that switches `switches` times; prints the times as JSON."""
    from tests.rig.whep_client import WhepViewer

    sizes = {"full": MAIN[:2], "grid": SUB[:2]}
    viewer = WhepViewer(base_url, "cam0", decode=True, query="view=grid", stream=True)
    await viewer.start()
    try:
        await viewer.wait_stream_open(60)
        await _wait_size(viewer, sizes["grid"], 60)
        times: list[float] = []
        view = "grid"
        for _ in range(switches + 1):
            view = "full" if view == "grid" else "grid"
            await asyncio.sleep(random.uniform(1.0, 2.0))  # land anywhere in a GOP
            count = len(viewer.frames)
            sent = time.monotonic()
            viewer.send_stream({"type": "view", "view": view})
            await _wait_size(viewer, sizes[view], 30, after=count)
            first = next(f for f in viewer.frames[count:] if (f.width, f.height) == sizes[view])
            times.append((first.at - sent) * 1000)
        print(json.dumps({"cold_ms": times[0], "switch_ms": times[1:]}), flush=True)
    finally:
        await viewer.close()


async def _wait_size(viewer: Any, size: tuple[int, int], timeout: float, after: int = 0) -> None:
    await viewer._wait(
        lambda: any((f.width, f.height) == size for f in viewer.frames[after:]),
        timeout,
        f"{size}",
    )


async def _grid_main(base_url: str, cameras: int, view: str, window_s: float) -> None:
    """A session per camera in `view`; prints the H.264 received per second as JSON."""
    from tests.rig.whep_client import WhepViewer

    viewers = [WhepViewer(base_url, f"cam{i}", query=f"view={view}") for i in range(cameras)]
    try:
        for viewer in viewers:
            await viewer.start()
        for viewer in viewers:
            await viewer.wait_frames(GOP, timeout=120)
        await asyncio.sleep(2)  # past the join bursts
        start = time.monotonic()
        await asyncio.sleep(window_s)
        end = time.monotonic()
        received = sum(f.size or 0 for v in viewers for f in v.frames if start <= f.at < end)
        print(json.dumps({"mbit_s": received * 8 / (end - start) / 1e6}), flush=True)
    finally:
        for viewer in viewers:
            with contextlib.suppress(Exception):
                await viewer.close()


async def _viewers_main(base_url: str) -> None:
    """JSON lines on stdin: {"add": N} (closes the previous ones) / {"close": true}."""
    from tests.rig.whep_client import WhepViewer

    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    viewers: list[WhepViewer] = []
    try:
        while line := await stdin.readline():
            command = json.loads(line)
            for old in viewers:
                await old.close()
            viewers = []
            if "add" in command:
                for _ in range(int(command["add"])):
                    viewers.append(await WhepViewer(base_url, "cam0").start())
                for viewer in viewers:
                    await viewer.wait_frames(5, timeout=60)
            print(json.dumps({"viewers": len(viewers)}), flush=True)
            if "close" in command:
                return
    finally:
        for viewer in viewers:
            with contextlib.suppress(Exception):
                await viewer.close()


# --- without the switching layer ----------------------------------------------------------


class BareFeed:
    """What a viewer read before main and sub streams: one Subscription of the main hub."""

    def __init__(self, hub: Any, *, view: str = "full", pin: str = "auto") -> None:
        self.hub = hub
        self.view, self.pin, self.current, self.reason = view, pin, "main", "view"
        self.on_switch: Any = None
        self._sub = hub.subscribe()

    async def get(self) -> Any:
        return await self._sub.get()

    def request_keyframe(self) -> None:
        self.hub.request_keyframe()

    def close(self) -> None:
        self.hub.unsubscribe(self._sub)

    def streams(self) -> list[str]:
        return ["main"]


# --- the measurements ---------------------------------------------------------------------


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _cpu_window(seconds: float) -> float:
    """This process's CPU over `seconds`, in % of one core."""
    before, started = _cpu_s(), time.monotonic()
    await asyncio.sleep(seconds)
    return 100 * (_cpu_s() - before) / (time.monotonic() - started)


def _launch(width: int, height: int, kbps: int) -> str:
    from tests.rig.streams import testsrc_h264

    return testsrc_h264(width, height, fps=FPS, gop=GOP, bitrate_kbps=kbps, overlay=False)


async def measure(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    from gateway.app import Gateway
    from gateway.config import parse_config
    from gateway.webrtc import session as session_module
    from tests.rig.rtsp import RtspServer

    camera = RtspServer({"/main": _launch(*MAIN), "/sub": _launch(*SUB)}, keep_encoding=True)
    await camera.start()
    listen = free_port()
    cameras = [
        {"name": f"cam{i}", "source": camera.url("/main"), "substream": camera.url("/sub")}
        for i in range(args.cameras)
    ]
    config = {
        "listen": f"127.0.0.1:{listen}",
        "auth": False,
        "webrtc": {"candidates": {"addresses": ["127.0.0.1"]}},
        "cameras": cameras,
    }
    gateway = Gateway.from_config(parse_config(json.dumps(config)))
    await gateway.start()
    base_url = f"http://127.0.0.1:{listen}"
    me = [venv_python(), "-m", "bench.streams"]
    result: dict[str, Any] = {
        "main": {"size": f"{MAIN[0]}x{MAIN[1]}", "kbit_s": MAIN[2]},
        "sub": {"size": f"{SUB[0]}x{SUB[1]}", "kbit_s": SUB[2]},
        "fps": FPS,
        "gop": GOP,
    }
    try:
        async with Children(run_dir) as children:
            switcher = await children.spawn(
                "switcher",
                [*me, "--switcher", base_url, str(args.switches)],
                pipe_stdio=True,
                cpus=RIG_CPUS,
            )
            times = await switcher.read_json(60 + 10 * args.switches)
            result["switch_cold_ms"] = round(times["cold_ms"], 1)
            result["switch_ms"] = summary(times["switch_ms"])

            grid: dict[str, float] = {}
            for view in ("grid", "full"):
                child = await children.spawn(
                    f"grid-{view}",
                    [*me, "--grid", base_url, str(args.cameras), view, str(args.window)],
                    pipe_stdio=True,
                    cpus=RIG_CPUS,
                )
                grid[view] = round((await child.read_json(300 + args.window))["mbit_s"], 2)
            result["grid"] = {
                "cameras": args.cameras,
                "sub_streams_mbit_s": grid["grid"],
                "main_streams_mbit_s": grid["full"],
            }

            viewers = await children.spawn(
                "viewers", [*me, "--viewers-of", base_url], pipe_stdio=True, cpus=RIG_CPUS
            )
            cpu: dict[str, list[float]] = {"bare": [], "feed": []}
            real_feed = session_module.ViewerFeed
            for order in (("bare", "feed"), ("feed", "bare")):  # ABBA: drift cancels
                for mode in order:
                    session_module.ViewerFeed = BareFeed if mode == "bare" else real_feed  # type: ignore[misc,assignment]
                    await viewers.send_json({"add": args.viewers})
                    await viewers.read_json(300)
                    await asyncio.sleep(2)  # joins settle
                    cpu[mode].append(await _cpu_window(args.window))
            session_module.ViewerFeed = real_feed  # type: ignore[misc]
            await viewers.send_json({"close": True})
            await viewers.read_json(60)
        bare, feed = (sum(v) / len(v) / args.viewers for v in (cpu["bare"], cpu["feed"]))
        result["cpu"] = {
            "viewers": args.viewers,
            "windows_pct": {k: [round(x, 2) for x in v] for k, v in cpu.items()},
            "per_viewer_pct_bare": round(bare, 3),
            "per_viewer_pct_feed": round(feed, 3),
            "layer_cost": round(feed / bare - 1, 3) if bare else None,
        }
    finally:
        await gateway.stop()
        await camera.stop()
    result["targets_met"] = {
        "switch_p50": (result["switch_ms"]["p50"] or 1e9) <= TARGET_SWITCH_P50_MS,
        "layer_cost": (result["cpu"]["layer_cost"] or 0) <= TARGET_LAYER_COST,
        "grid_below_mains": grid["grid"] < grid["full"],
    }
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.streams")
    parser.add_argument("--switches", type=int, default=40)
    parser.add_argument("--cameras", type=int, default=9)
    parser.add_argument("--viewers", type=int, default=16)
    parser.add_argument("--window", type=float, default=15.0, help="seconds per window")
    parser.add_argument("--out", type=Path, default=Path("bench-streams.json"))
    parser.add_argument("--switcher", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--grid", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--viewers-of", dest="viewers_of", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.switcher:
        asyncio.run(_switcher_main(args.switcher[0], int(args.switcher[1])))
        return 0
    if args.grid:
        base_url, cameras, view, window = args.grid
        asyncio.run(_grid_main(base_url, int(cameras), view, float(window)))
        return 0
    if args.viewers_of:
        asyncio.run(_viewers_main(args.viewers_of))
        return 0
    if not in_private_netns():
        reexec_in_netns("bench.streams", argv)
    bring_up_loopback()
    logging.basicConfig(level=logging.WARNING)
    run_dir = Path(tempfile.mkdtemp(prefix="camgate-streams-bench-"))
    result = asyncio.run(measure(args, run_dir))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if all(result["targets_met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

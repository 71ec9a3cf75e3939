"""PTZ command latency: a data-channel message received by camgate -> its ONVIF request
arriving at the camera. Target (issue 3): p99 <= 10 ms.

    python -m bench.ptz_latency [--commands 300] [--out FILE.json]

Re-executes itself in a fresh network namespace holding only lo (root), like `python -m
bench`. The ONVIF test device (tests/rig/onvif_device.py, real SOAP) runs in a child
process on the rig's CPUs and reports when each request reached its HTTP handler; camgate
(in this process) is fed by an aiortc viewer over the "ptz" data channel, one command at a
time, alternating held moves and stops. Both clocks are CLOCK_MONOTONIC.

Per command:  wire = device arrival - data channel message received (the gateway's hook)
              dispatch = backend call started - received (parse, controller queue)
              backend = device arrival - backend call started (SOAP build, HTTP send)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.netns import bring_up_loopback, in_private_netns, reexec_in_netns
from bench.procs import RIG_CPUS, Child, Children, venv_python
from bench.stats import latency_table, summary
from tests.rig.net import free_port
from tests.rig.wait import wait_until

USER, PASSWORD = "admin", "secret"
UNUSED_RTSP = "rtsp://127.0.0.1:9/unused"  # PTZ only: the stream is not what is measured
TARGET_P99_MS = 10.0


@dataclass(frozen=True)
class PtzLatencySettings:
    commands: int = 300  # measured (>= 200 for a meaningful p99)
    warmup: int = 20  # first requests open HTTP connections, build zeep services
    target_p99_ms: float = TARGET_P99_MS


# --- the device child -------------------------------------------------------------------


async def _device_main() -> None:
    """Serve the ONVIF test device; one JSON line per request: arrival time, operation."""
    from tests.rig.onvif_device import OnvifTestDevice

    class TimedDevice(OnvifTestDevice):
        async def _handle(self, request: Any) -> Any:
            arrived = time.monotonic()  # before the body is read or parsed
            before = len(self.requests)
            response = await super()._handle(request)
            ok = len(self.requests) > before
            operation = self.requests[-1].operation if ok else (self.faults[-1].operation or "")
            print(json.dumps({"at": arrived, "op": operation, "ok": ok}), flush=True)
            return response

    device = TimedDevice(username=USER, password=PASSWORD)
    await device.start()
    print(json.dumps({"port": device.port}), flush=True)
    await asyncio.Event().wait()  # until SIGTERM


# --- the measurement --------------------------------------------------------------------


async def device_arrival(
    device: Child, operation: str, after: float, timeout: float = 10.0
) -> float:
    """The device's arrival time of the next `operation` request made after `after`
    (skipping others, e.g. an automatic Stop)."""
    while True:
        line = await device.read_json(timeout)
        if line["op"] == operation and line["at"] >= after:
            if not line["ok"]:
                raise RuntimeError(f"the device refused {operation}")
            return float(line["at"])


async def spawn_onvif_device(children: Children) -> tuple[Child, dict[str, Any]]:
    """The timed ONVIF test device in a child process, and the camera's `onvif:` block."""
    device = await children.spawn(
        "onvif-device",
        [venv_python(), "-m", "bench.ptz_latency", "--device"],
        pipe_stdio=True,
        cpus=RIG_CPUS,
    )
    port = int((await device.read_json(60))["port"])
    return device, {"host": "127.0.0.1", "port": port, "username": USER, "password": PASSWORD}


async def measure_ptz_latency(
    settings: PtzLatencySettings, run_dir: Path | None = None
) -> dict[str, Any]:
    from gateway.app import Gateway
    from gateway.config import parse_config
    from tests.rig.whep_client import WhepViewer

    run_dir = run_dir or Path(tempfile.mkdtemp(prefix="camgate-ptz-bench-"))
    logging.getLogger("camgate.hub").setLevel(logging.ERROR)  # the never-played stream
    wire: list[float] = []
    dispatch: list[float] = []
    backend: list[float] = []
    round_trip: list[float] = []
    async with Children(run_dir) as children:
        device, onvif = await spawn_onvif_device(children)
        listen = free_port()
        config = {
            "listen": f"127.0.0.1:{listen}",
            "auth": False,
            "webrtc": {"candidates": {"addresses": ["127.0.0.1"]}},
            "cameras": [{"name": "cam", "source": UNUSED_RTSP, "onvif": onvif, "preload": True}],
        }
        gateway = Gateway.from_config(parse_config(json.dumps(config)))
        await gateway.start()
        viewer = WhepViewer(f"http://127.0.0.1:{listen}", "cam", ptz=True)
        try:
            controller = gateway.ptz_controllers["cam"]
            await wait_until(lambda: gateway.ptz_backends["cam"].capabilities.any, 30)
            await viewer.start()
            await viewer.wait_ptz_open(timeout=30)
            for i in range(settings.warmup + settings.commands):
                command: dict[str, Any] = (
                    {"cmd": "move", "pan": (-1) ** i * 0.5, "tilt": 0.25}
                    if i % 2 == 0
                    else {"cmd": "stop"}
                )
                sent = time.monotonic()
                reply = await viewer.ptz(command)
                replied = time.monotonic()
                if not reply.get("ok"):
                    raise RuntimeError(f"{command['cmd']}: {reply.get('error')}")
                timing = next(
                    t
                    for t in reversed(controller.timings)
                    if t.command == command["cmd"] and sent <= t.received_at <= replied
                )
                operation = "ContinuousMove" if command["cmd"] == "move" else "Stop"
                arrived = await device_arrival(device, operation, timing.received_at)
                if i < settings.warmup:
                    continue
                wire.append((arrived - timing.received_at) * 1000)
                dispatch.append((timing.started_at - timing.received_at) * 1000)
                backend.append((arrived - timing.started_at) * 1000)
                round_trip.append((replied - sent) * 1000)
        finally:
            await viewer.close()
            await gateway.stop()
    wire_summary = summary(wire)
    p99 = wire_summary["p99"]
    return {
        "settings": asdict(settings),
        "wire_ms": wire_summary,
        "dispatch_ms": summary(dispatch),
        "backend_ms": summary(backend),
        "viewer_round_trip_ms": summary(round_trip),
        "target_met": p99 is not None and p99 <= settings.target_p99_ms,
    }


def render_lines(result: dict[str, Any]) -> list[str]:
    """Report lines (for `python -m bench`'s report too)."""
    lines = latency_table(
        "PTZ latency (ms): data channel message received -> ONVIF request at the camera",
        [
            ("received -> on the wire", result["wire_ms"]),
            ("  received -> backend", result["dispatch_ms"]),
            ("  backend -> on the wire", result["backend_ms"]),
            ("viewer round trip", result["viewer_round_trip_ms"]),
        ],
        24,
    )
    target = result["settings"]["target_p99_ms"]
    verdict = "met" if result["target_met"] else "NOT met"
    lines.append(f"target p99 <= {target:g} ms: {verdict}")
    return lines


# --- entry point ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.ptz_latency", description=__doc__)
    parser.add_argument("--commands", type=int, default=PtzLatencySettings.commands)
    parser.add_argument("--out", type=Path, default=Path("bench-ptz-latency.json"))
    parser.add_argument("--device", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device:
        asyncio.run(_device_main())
        return 0
    if not in_private_netns():
        reexec_in_netns("bench.ptz_latency", argv)
    bring_up_loopback()
    result = asyncio.run(measure_ptz_latency(PtzLatencySettings(commands=args.commands)))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(render_lines(result)))
    print(f"\nresults: {args.out}")
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

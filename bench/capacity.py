"""Gateway CPU and memory at 0/1/4/16 non-decoding viewers, with receiver-side frame
loss and camera-send -> viewer-receive transit latency."""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.cpu import CpuMeter, CpuWindow, rss_mb
from bench.procs import RIG_CPUS, Child, Children, venv_python
from bench.stats import summary
from bench.targets import RunningTarget


@dataclass(frozen=True)
class CapacitySettings:
    viewer_counts: tuple[int, ...] = (0, 1, 4, 16)
    settle_s: float = 4.0  # after the viewers receive: let join bursts (cached GOPs) pass
    window_s: float = 15.0
    join_timeout_s: float = 30.0
    rounds: int = 2  # per target, in ABBA order: the machine's noise drifts
    send_workers: int = 0  # camgate's webrtc.send_workers


@dataclass(frozen=True)
class CapacityPoint:
    """One measuring window of one round."""

    viewers: int
    receiving: int
    gateway_cpu: float  # % of one core, the gateway and its send workers together
    worker_cpu: list[float]  # of which each send worker
    gateway_rss_mb: float
    receivers_cpu: float
    camera_cpu: float
    machine_cpu: float  # % of one core, whole machine (max 100 * nproc)
    foreign_cpu: float  # machine_cpu minus the benchmark's own processes: other people's load
    window_s: float
    frames_expected: int
    frames_complete: int
    received_bytes: int
    wire_ms: list[float] = field(repr=False)  # camera send -> gateway sent the frame's last packet
    latencies_ms: list[float] = field(repr=False)  # camera send -> viewer got the last packet
    first_packet_ms: list[float] = field(repr=False)  # camera send -> viewer got the first packet

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["wire_ms"] = summary(data.pop("wire_ms"))
        data["latency_ms"] = summary(data.pop("latencies_ms"))
        data["first_packet_ms"] = summary(data.pop("first_packet_ms"))
        return data


async def measure_capacity(
    children: Children, target: RunningTarget, camera: Child, settings: CapacitySettings
) -> list[CapacityPoint]:
    """One round: add viewers up to each count, settle, measure a window."""
    receivers = await children.spawn(
        f"receivers-{target.kind}",
        [venv_python(), "-m", "bench.receivers", "--whep", target.whep_url],
        pipe_stdio=True,
        cpus=RIG_CPUS,
    )
    wiretap = await children.spawn(
        f"wiretap-{target.kind}",
        [venv_python(), "-m", "bench.wiretap"],
        pipe_stdio=True,
        cpus=RIG_CPUS,
    )
    workers = {f"worker{i}": pid for i, pid in enumerate(target.helper_pids())}
    pids = {
        "gateway": target.child.pid,
        "receivers": receivers.pid,
        "camera": camera.pid,
        "wiretap": wiretap.pid,
        **workers,
    }
    meter = CpuMeter(pids)
    points: list[CapacityPoint] = []
    try:
        viewers = 0
        for count in settings.viewer_counts:
            receiving = 0
            if count > viewers:
                await receivers.send_json(
                    {"cmd": "add", "count": count - viewers, "timeout": settings.join_timeout_s}
                )
                added = await receivers.read_json(settings.join_timeout_s + 30)
                viewers, receiving = added["viewers"], added["receiving"]
                if added.get("errors"):
                    raise RuntimeError(f"{target.kind}: viewers failed to join: {added['errors']}")
            await asyncio.sleep(settings.settle_s)
            await wiretap.send_json({"cmd": "start"})
            await wiretap.read_json(10)
            await receivers.send_json({"cmd": "start"})
            await receivers.read_json(10)
            meter.start()
            await asyncio.sleep(settings.window_s)
            window = meter.stop()
            await receivers.send_json({"cmd": "stop"})
            result = await receivers.read_json(30)
            await wiretap.send_json({"cmd": "stop"})
            wire = await wiretap.read_json(30)
            points.append(
                _point(count, receiving, window, result, wire, target.child.pid, list(workers))
            )
        await receivers.send_json({"cmd": "close"})
        await receivers.read_json(30)
    finally:
        await children.stop(receivers)
        await children.stop(wiretap)
    return points


def wire_latencies(stamps: list[list[int]], wire_frames: list[list[int]]) -> list[float]:
    """Camera send -> the gateway sending a frame's last packet, in ms, joined on
    (SSRC, RTP timestamp): the receivers know the send stamp, the tap the send time."""
    sent = {(ssrc, ts): wire_ns for ssrc, ts, wire_ns in wire_frames}
    return [
        round((sent[(ssrc, ts)] - send_ns) / 1e6, 3)
        for ssrc, ts, send_ns in stamps
        if (ssrc, ts) in sent
    ]


def _point(
    count: int,
    receiving: int,
    window: CpuWindow,
    result: dict[str, Any],
    wire: dict[str, Any],
    gateway_pid: int,
    workers: list[str],
) -> CapacityPoint:
    per_viewer = result["viewers"]
    worker_cpu = [window.percent[name] for name in workers]
    return CapacityPoint(
        viewers=count,
        receiving=receiving,
        gateway_cpu=window.percent["gateway"] + sum(worker_cpu),
        worker_cpu=[round(cpu, 2) for cpu in worker_cpu],
        gateway_rss_mb=rss_mb(gateway_pid),
        receivers_cpu=window.percent["receivers"],
        camera_cpu=window.percent["camera"],
        machine_cpu=window.machine_percent,
        foreign_cpu=max(0.0, window.machine_percent - sum(window.percent.values())),
        window_s=window.seconds,
        frames_expected=sum(v["expected"] for v in per_viewer),
        frames_complete=sum(min(v["complete"], v["expected"]) for v in per_viewer),
        received_bytes=sum(v["bytes"] for v in per_viewer),
        wire_ms=wire_latencies(result["stamps"], wire["frames"]),
        latencies_ms=result["latencies_ms"],
        first_packet_ms=result["first_packet_ms"],
    )


def combine(rounds: list[CapacityPoint]) -> dict[str, Any]:
    """One viewer count over all rounds: mean CPU/RSS (with the spread), pooled frames
    and latency samples."""

    def mean(name: str, digits: int = 2) -> float:
        return round(statistics.fmean(getattr(p, name) for p in rounds), digits)

    def spread(name: str) -> list[float]:
        values = [getattr(p, name) for p in rounds]
        return [round(min(values), 2), round(max(values), 2)]

    expected = sum(p.frames_expected for p in rounds)
    complete = sum(p.frames_complete for p in rounds)
    seconds = sum(p.window_s for p in rounds)
    viewers = rounds[0].viewers
    return {
        "viewers": viewers,
        "rounds": len(rounds),
        "gateway_cpu": mean("gateway_cpu"),
        "gateway_cpu_range": spread("gateway_cpu"),
        "worker_cpu": [
            round(statistics.fmean(cpus), 2)
            for cpus in zip(*(p.worker_cpu for p in rounds), strict=False)
        ],
        "gateway_rss_mb": mean("gateway_rss_mb", 1),
        "receivers_cpu": mean("receivers_cpu"),
        "receivers_cpu_range": spread("receivers_cpu"),
        "camera_cpu": mean("camera_cpu"),
        "machine_cpu": mean("machine_cpu", 1),
        "machine_cpu_range": spread("machine_cpu"),
        "foreign_cpu_max": round(max(p.foreign_cpu for p in rounds), 1),
        "frames_expected": expected,
        "frames_complete": complete,
        "loss_pct": round(100.0 * (1 - complete / expected), 3) if expected else None,
        "mbit_per_viewer": (
            round(sum(p.received_bytes for p in rounds) * 8 / 1e6 / seconds / viewers, 3)
            if viewers
            else None
        ),
        "wire_ms": summary([x for p in rounds for x in p.wire_ms]),
        "latency_ms": summary([x for p in rounds for x in p.latencies_ms]),
        "first_packet_ms": summary([x for p in rounds for x in p.first_packet_ms]),
    }

"""Prometheus text exposition (format 0.0.4) of camgate's state. Pure: no I/O; the HTTP
handler gathers the numbers (gateway/http/metrics.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

CAMERA_STATES = ("idle", "connecting", "live", "reconnecting", "offline")


@dataclass(frozen=True, slots=True)
class ProcessFacts:
    cpu_seconds: float
    resident_bytes: int | None
    open_fds: int | None
    start_time_seconds: float  # Unix time


@dataclass(frozen=True, slots=True)
class SendWorkerFacts:
    index: int
    up: bool
    viewers: int
    cpu_seconds: float | None
    resident_bytes: int | None


@dataclass(frozen=True, slots=True)
class GatewayFacts:
    cameras: list[dict[str, Any]]  # CameraHub.snapshot() of each camera
    frames: Mapping[str, int]  # camera -> frames received since start
    sessions: int  # open WebRTC viewer sessions
    mqtt_connected: bool | None  # None: MQTT not configured
    process: ProcessFacts
    send_workers: list[SendWorkerFacts] = field(default_factory=list)


def render(facts: GatewayFacts) -> str:
    out: list[str] = []

    def family(name: str, kind: str, help: str, samples: Iterable[tuple[str, float]]) -> None:
        out.append(f"# HELP {name} {help}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(f"{name}{labels} {_number(value)}" for labels, value in samples)

    cams = facts.cameras
    family(
        "camgate_camera_state",
        "gauge",
        "1 for the state the camera is in.",
        (
            (_labels(camera=c["name"], state=s), float(c["state"] == s))
            for c in cams
            for s in CAMERA_STATES
        ),
    )
    family(
        "camgate_camera_fps",
        "gauge",
        "Frames per second received from the camera (2 s window).",
        ((_labels(camera=c["name"]), c["fps"]) for c in cams),
    )
    family(
        "camgate_camera_bitrate_bits_per_second",
        "gauge",
        "Video bitrate received from the camera (2 s window).",
        ((_labels(camera=c["name"]), c["bitrate_kbps"] * 1000) for c in cams),
    )
    family(
        "camgate_camera_viewers",
        "gauge",
        "Viewers watching the camera.",
        ((_labels(camera=c["name"]), c["viewers"]) for c in cams),
    )
    family(
        "camgate_camera_frames_received_total",
        "counter",
        "Pictures received from the camera.",
        ((_labels(camera=c["name"]), facts.frames.get(c["name"], 0)) for c in cams),
    )
    family(
        "camgate_camera_dropped_frames_total",
        "counter",
        "Pictures dropped for viewers that fell behind.",
        ((_labels(camera=c["name"]), c["dropped_frames"]) for c in cams),
    )
    family(
        "camgate_camera_reconnects_total",
        "counter",
        "Reconnections to the camera.",
        ((_labels(camera=c["name"]), c["reconnects"]) for c in cams),
    )
    family(
        "camgate_camera_limit_drops_total",
        "counter",
        "Times the camera's data was dropped for exceeding a cap (picture, GOP).",
        ((_labels(camera=c["name"]), c.get("limit_drops", 0)) for c in cams),
    )
    family("camgate_webrtc_sessions", "gauge", "Open viewer sessions.", [("", facts.sessions)])
    if facts.mqtt_connected is not None:
        family(
            "camgate_mqtt_connected",
            "gauge",
            "1 while connected to the MQTT broker.",
            [("", float(facts.mqtt_connected))],
        )
    _send_workers(family, facts.send_workers)
    p = facts.process
    family(
        "process_cpu_seconds_total", "counter", "CPU time (user + system).", [("", p.cpu_seconds)]
    )
    if p.resident_bytes is not None:
        family(
            "process_resident_memory_bytes", "gauge", "Resident memory.", [("", p.resident_bytes)]
        )
    if p.open_fds is not None:
        family("process_open_fds", "gauge", "Open file descriptors.", [("", p.open_fds)])
    family(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process (Unix time).",
        [("", p.start_time_seconds)],
    )
    return "\n".join(out) + "\n"


def _send_workers(family: Any, workers: list[SendWorkerFacts]) -> None:
    """The worker processes' own numbers: process_* above covers the gateway's only."""
    if not workers:
        return
    family(
        "camgate_send_worker_up",
        "gauge",
        "1 while the send worker process runs.",
        ((_labels(worker=str(w.index)), float(w.up)) for w in workers),
    )
    family(
        "camgate_send_worker_viewers",
        "gauge",
        "Viewers whose video the send worker sends.",
        ((_labels(worker=str(w.index)), w.viewers) for w in workers),
    )
    family(
        "camgate_send_worker_cpu_seconds_total",
        "counter",
        "CPU time of the send worker process (user + system).",
        (
            (_labels(worker=str(w.index)), w.cpu_seconds)
            for w in workers
            if w.cpu_seconds is not None
        ),
    )
    family(
        "camgate_send_worker_resident_memory_bytes",
        "gauge",
        "Resident memory of the send worker process.",
        (
            (_labels(worker=str(w.index)), w.resident_bytes)
            for w in workers
            if w.resident_bytes is not None
        ),
    )


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)

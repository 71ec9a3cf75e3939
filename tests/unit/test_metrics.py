"""/metrics: prometheus-client writes it from camgate's collectors; the text is checked
with prometheus-client's own parser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import REGISTRY, CollectorRegistry

from gateway.camera_status import CameraState, CameraStatus
from gateway.http.metrics import REGISTRY as APP_REGISTRY
from gateway.http.server import make_app
from gateway.hub import CameraHub
from gateway.metrics import (
    CAMERA_STATES,
    CameraCollector,
    GatewayCollector,
    SendWorkerCollector,
    SendWorkerFacts,
)
from gateway.process_figures import ProcessCollector
from gateway.sources.base import Source
from gateway.webrtc.session import WhepSessions
from tests.rig.prereq import missing, require_program
from tests.unit.statuses import camera_status

ROOT = Path(__file__).resolve().parents[2]
METRICS_DOC = ROOT / "docs" / "metrics.md"


def scrape(
    cameras: list[CameraStatus],
    *,
    sessions: int = 0,
    mqtt: bool | None = None,
    workers: list[SendWorkerFacts] | None = None,
    proc: Path = Path("/proc"),
) -> str:
    registry = CollectorRegistry()
    registry.register(CameraCollector(lambda: cameras))
    registry.register(GatewayCollector(lambda: sessions, lambda: mqtt))
    registry.register(SendWorkerCollector(lambda: workers or []))
    registry.register(ProcessCollector(proc))
    return generate_latest(registry).decode()


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_every_camera_and_state_parses() -> None:
    odd = 'odd"name\\x'
    text = scrape(
        [camera_status(), camera_status(name=odd, state=CameraState.OFFLINE)],
        sessions=2,
        mqtt=True,
    )
    found = families(text)
    states = {
        (s.labels["camera"], s.labels["state"]): s.value
        for s in found["camgate_camera_state"].samples
    }
    assert states == {
        **{("front", s.value): float(s is CameraState.LIVE) for s in CameraState},
        **{(odd, s.value): float(s is CameraState.OFFLINE) for s in CameraState},
    }
    bitrate = found["camgate_camera_bitrate_bits_per_second"].samples[0]
    assert bitrate.value == 4_012_400
    assert found["camgate_camera_frames_received"].type == "counter"
    assert found["camgate_camera_frames_received"].samples[0].value == 900
    assert found["camgate_webrtc_sessions"].samples[0].value == 2
    assert found["camgate_mqtt_connected"].samples[0].value == 1
    assert found["process_open_fds"].samples[0].value > 0
    assert "rtsp://" not in text  # the camera's source never appears


# Dashboards depend on these names, types and help texts.
FAMILIES = (
    ("camgate_camera_state", "gauge", "1 for the state the camera is in."),
    ("camgate_camera_fps", "gauge", "Frames per second received from the camera (2 s window)."),
    (
        "camgate_camera_bitrate_bits_per_second",
        "gauge",
        "Video bitrate received from the camera (2 s window).",
    ),
    ("camgate_camera_viewers", "gauge", "Viewers watching the camera."),
    ("camgate_camera_listeners", "gauge", "Viewers receiving the camera's audio."),
    ("camgate_camera_frames_received_total", "counter", "Pictures received from the camera."),
    (
        "camgate_camera_dropped_frames_total",
        "counter",
        "Pictures dropped for viewers that fell behind.",
    ),
    ("camgate_camera_reconnects_total", "counter", "Reconnections to the camera."),
    (
        "camgate_camera_limit_drops_total",
        "counter",
        "Times the camera's data was dropped for exceeding a cap (picture, GOP).",
    ),
    (
        "camgate_stream_switches_total",
        "counter",
        "Viewers' switches between the camera's main and sub stream, by reason.",
    ),
    (
        "camgate_stream_bitrate_bits_per_second",
        "gauge",
        "Video bitrate received per stream of the camera (main, sub; 2 s window).",
    ),
    ("camgate_stream_live", "gauge", "1 while the camera's stream (main, sub) is live."),
    ("camgate_webrtc_sessions", "gauge", "Open viewer sessions."),
    ("camgate_mqtt_connected", "gauge", "1 while connected to the MQTT broker."),
    ("camgate_send_worker_up", "gauge", "1 while the send worker process runs."),
    ("camgate_send_worker_viewers", "gauge", "Viewers whose video the send worker sends."),
    (
        "camgate_send_worker_skipped_frames_total",
        "counter",
        "Frames not sent to a viewer because the send worker was too far behind.",
    ),
    (
        "camgate_send_worker_cpu_seconds_total",
        "counter",
        "CPU time of the send worker process (user + system).",
    ),
    (
        "camgate_send_worker_resident_memory_bytes",
        "gauge",
        "Resident memory of the send worker process.",
    ),
    ("process_cpu_seconds_total", "counter", "CPU time (user + system)."),
    ("process_resident_memory_bytes", "gauge", "Resident memory."),
    ("process_open_fds", "gauge", "Open file descriptors."),
    ("process_start_time_seconds", "gauge", "Start time of the process (Unix time)."),
)


def test_names_types_and_help_stay_what_dashboards_know() -> None:
    workers = [SendWorkerFacts(0, True, 1, 0, 1.0, 1)]
    text = scrape([camera_status()], mqtt=False, workers=workers)
    helps = [line.split(" ", 3)[2:] for line in text.splitlines() if line.startswith("# HELP")]
    types = dict(line.split(" ", 3)[2:] for line in text.splitlines() if line.startswith("# TYPE"))
    assert [(name, types[name], help) for name, help in helps] == list(FAMILIES)


def test_every_family_is_documented() -> None:
    doc = METRICS_DOC.read_text()
    for name, kind, _ in FAMILIES:
        assert f"| `{name}` | {kind} |" in doc, name


def test_camera_states_are_the_enums() -> None:
    assert CAMERA_STATES == ("idle", "connecting", "live", "reconnecting", "offline")
    assert set(CAMERA_STATES) == {s.value for s in CameraState}


def test_without_mqtt_or_proc_there_are_no_such_series(tmp_path: Path) -> None:
    names = set(families(scrape([], proc=tmp_path)))  # an empty /proc
    assert "camgate_mqtt_connected" not in names
    assert "process_open_fds" not in names and "process_resident_memory_bytes" not in names
    # getrusage() and the start time need no /proc.
    assert {"process_cpu_seconds", "process_start_time_seconds"} <= names


def test_send_workers_have_their_own_series() -> None:
    workers = [
        SendWorkerFacts(0, True, 3, 7, 1.5, 50_000_000),
        SendWorkerFacts(1, False, 0, 0, None, None),
    ]
    found = families(scrape([], sessions=3, workers=workers))
    up = {s.labels["worker"]: s.value for s in found["camgate_send_worker_up"].samples}
    assert up == {"0": 1, "1": 0}
    assert found["camgate_send_worker_viewers"].samples[0].value == 3
    skipped = {
        s.labels["worker"]: s.value for s in found["camgate_send_worker_skipped_frames"].samples
    }
    assert skipped == {"0": 7, "1": 0}
    cpu = found["camgate_send_worker_cpu_seconds"].samples
    assert [s.labels["worker"] for s in cpu] == ["0"]
    assert "camgate_send_worker" not in scrape([])


def never_started() -> Source:
    raise AssertionError("no camera is started in this test")


def test_each_gateway_has_its_own_registry() -> None:
    def app(*names: str):  # type: ignore[no-untyped-def]
        hubs = {name: CameraHub(name, never_started) for name in names}
        return make_app(hubs, WhepSessions())

    first, second = app("front"), app("back", "side")
    cameras = [
        {
            s.labels["camera"]
            for s in families(generate_latest(a[APP_REGISTRY]).decode())[
                "camgate_camera_viewers"
            ].samples
        }
        for a in (first, second)
    ]
    assert cameras == [{"front"}, {"back", "side"}]
    assert "camgate_camera_viewers" not in generate_latest(REGISTRY).decode()


# A hardened unit: /proc shows only process directories (no /proc/stat, which
# prometheus-client's own ProcessCollector needs) and only the service's own processes.
HARDENED_PROC = "mount -t proc -o subset=pid,hidepid=invisible proc /proc"
SCRAPE = """
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry
from gateway.process_figures import ProcessCollector
import json, os
registry = CollectorRegistry()
registry.register(ProcessCollector())
print(json.dumps([os.path.exists("/proc/stat"), generate_latest(registry).decode()]))
"""


def test_process_figures_under_procsubset_pid_and_protectproc_invisible() -> None:
    if os.geteuid() != 0:
        missing("not root: a private /proc mount needs CAP_SYS_ADMIN")
    unshare = require_program("unshare")
    result = subprocess.run(
        [
            unshare,
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f'{HARDENED_PROC} && exec "$0" -c "$1"',
            sys.executable,
            SCRAPE,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    proc_stat_visible, text = json.loads(result.stdout)
    assert not proc_stat_visible  # the hardening is in force
    found = families(text)
    assert found["process_resident_memory_bytes"].samples[0].value > 1_000_000
    assert found["process_open_fds"].samples[0].value > 0
    assert {"process_cpu_seconds", "process_start_time_seconds"} <= set(found)

"""The Prometheus text is valid (checked with prometheus_client's own parser)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import GatewayFacts, ProcessFacts, SendWorkerFacts, render


def camera(name: str, state: str) -> dict:
    return {
        "name": name,
        "state": state,
        "fps": 29.97,
        "bitrate_kbps": 4000.5,
        "viewers": 2,
        "dropped_frames": 3,
        "reconnects": 1,
    }


def test_render_parses_and_carries_every_camera() -> None:
    facts = GatewayFacts(
        cameras=[camera("front", "live"), camera('odd"name\\x', "offline")],
        frames={"front": 900},
        sessions=2,
        mqtt_connected=True,
        process=ProcessFacts(12.5, 90_000_000, 42, 1_764_000_000.0),
    )
    families = {f.name: f for f in text_string_to_metric_families(render(facts))}
    states = {
        (s.labels["camera"], s.labels["state"]): s.value
        for s in families["camgate_camera_state"].samples
    }
    assert states[("front", "live")] == 1 and states[("front", "idle")] == 0
    assert states[('odd"name\\x', "offline")] == 1
    bitrate = families["camgate_camera_bitrate_bits_per_second"].samples[0]
    assert bitrate.value == 4_000_500
    assert families["camgate_camera_frames_received"].type == "counter"
    assert families["camgate_mqtt_connected"].samples[0].value == 1
    assert families["process_open_fds"].samples[0].value == 42


def test_without_mqtt_or_proc_there_are_no_such_series() -> None:
    facts = GatewayFacts([], {}, 0, None, ProcessFacts(1.0, None, None, 0.0))
    names = {f.name for f in text_string_to_metric_families(render(facts))}
    assert "camgate_mqtt_connected" not in names and "process_open_fds" not in names


def test_send_workers_have_their_own_series() -> None:
    workers = [
        SendWorkerFacts(0, True, 3, 1.5, 50_000_000),
        SendWorkerFacts(1, False, 0, None, None),
    ]
    facts = GatewayFacts([], {}, 3, None, ProcessFacts(1.0, None, None, 0.0), workers)
    families = {f.name: f for f in text_string_to_metric_families(render(facts))}
    up = {s.labels["worker"]: s.value for s in families["camgate_send_worker_up"].samples}
    assert up == {"0": 1, "1": 0}
    assert families["camgate_send_worker_viewers"].samples[0].value == 3
    assert [s.labels["worker"] for s in families["camgate_send_worker_cpu_seconds"].samples] == [
        "0"
    ]
    no_workers = render(GatewayFacts([], {}, 0, None, ProcessFacts(1.0, None, None, 0.0)))
    assert "camgate_send_worker" not in no_workers

"""camgate's Prometheus metrics: collectors that read the numbers where they live (each
camera's CameraStatus, the viewer sessions, MQTT, the send workers) at scrape time.
prometheus-client writes the text. Pure: no I/O; gateway/http/metrics.py wires the
collectors to a gateway and gateway/process_figures.py adds the process_* figures."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.camera_status import CameraState, CameraStatus

CAMERA_STATES = tuple(state.value for state in CameraState)


@dataclass(frozen=True, slots=True)
class SendWorkerFacts:
    index: int
    up: bool
    viewers: int
    skipped_frames: int
    cpu_seconds: float | None
    resident_bytes: int | None


class CameraCollector(Collector):
    """The camgate_camera_* families, one sample per camera."""

    def __init__(self, statuses: Callable[[], Iterable[CameraStatus]]) -> None:
        self._statuses = statuses

    def collect(self) -> Iterator[Metric]:
        cameras = list(self._statuses())
        state = GaugeMetricFamily(
            "camgate_camera_state", "1 for the state the camera is in.", labels=["camera", "state"]
        )
        for c in cameras:
            for s in CAMERA_STATES:
                state.add_metric([c.name, s], float(c.state == s))
        yield state
        yield _per_camera(
            GaugeMetricFamily,
            "camgate_camera_fps",
            "Frames per second received from the camera (2 s window).",
            ((c.name, c.fps) for c in cameras),
        )
        yield _per_camera(
            GaugeMetricFamily,
            "camgate_camera_bitrate_bits_per_second",
            "Video bitrate received from the camera (2 s window).",
            ((c.name, c.bitrate_kbps * 1000) for c in cameras),
        )
        yield _per_camera(
            GaugeMetricFamily,
            "camgate_camera_viewers",
            "Viewers watching the camera.",
            ((c.name, c.viewers) for c in cameras),
        )
        yield _per_camera(
            GaugeMetricFamily,
            "camgate_camera_listeners",
            "Viewers receiving the camera's audio.",
            ((c.name, c.listeners) for c in cameras),
        )
        yield _per_camera(
            CounterMetricFamily,
            "camgate_camera_frames_received",
            "Pictures received from the camera.",
            ((c.name, c.frames_received) for c in cameras),
        )
        yield _per_camera(
            CounterMetricFamily,
            "camgate_camera_dropped_frames",
            "Pictures dropped for viewers that fell behind.",
            ((c.name, c.dropped_frames) for c in cameras),
        )
        yield _per_camera(
            CounterMetricFamily,
            "camgate_camera_reconnects",
            "Reconnections to the camera.",
            ((c.name, c.reconnects) for c in cameras),
        )
        yield _per_camera(
            CounterMetricFamily,
            "camgate_camera_limit_drops",
            "Times the camera's data was dropped for exceeding a cap (picture, GOP).",
            ((c.name, c.limit_drops) for c in cameras),
        )
        switches = CounterMetricFamily(
            "camgate_stream_switches",
            "Viewers' switches between the camera's main and sub stream, by reason.",
            labels=["camera", "reason"],
        )
        streams = GaugeMetricFamily(
            "camgate_stream_bitrate_bits_per_second",
            "Video bitrate received per stream of the camera (main, sub; 2 s window).",
            labels=["camera", "stream"],
        )
        up = GaugeMetricFamily(
            "camgate_stream_live",
            "1 while the camera's stream (main, sub) is live.",
            labels=["camera", "stream"],
        )
        for c in cameras:
            for reason, count in sorted(c.switches.items()):
                switches.add_metric([c.name, reason], count)
            for stream in c.streams:
                streams.add_metric([c.name, stream.name], stream.bitrate_kbps * 1000)
                up.add_metric([c.name, stream.name], float(stream.state == CameraState.LIVE))
        yield switches
        yield streams
        yield up


class GatewayCollector(Collector):
    """Viewer sessions, and the MQTT connection when MQTT is configured."""

    def __init__(
        self, sessions: Callable[[], int], mqtt_connected: Callable[[], bool | None]
    ) -> None:
        self._sessions = sessions
        self._mqtt_connected = mqtt_connected

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "camgate_webrtc_sessions", "Open viewer sessions.", value=self._sessions()
        )
        connected = self._mqtt_connected()
        if connected is not None:
            yield GaugeMetricFamily(
                "camgate_mqtt_connected",
                "1 while connected to the MQTT broker.",
                value=float(connected),
            )


class SendWorkerCollector(Collector):
    """The send worker processes' own numbers (process_* covers the gateway's only); no
    series at all when the gateway sends from its own process."""

    def __init__(self, workers: Callable[[], list[SendWorkerFacts]]) -> None:
        self._workers = workers

    def collect(self) -> Iterator[Metric]:
        workers = self._workers()
        if not workers:
            return
        yield _per_worker(
            GaugeMetricFamily,
            "camgate_send_worker_up",
            "1 while the send worker process runs.",
            ((w.index, float(w.up)) for w in workers),
        )
        yield _per_worker(
            GaugeMetricFamily,
            "camgate_send_worker_viewers",
            "Viewers whose video the send worker sends.",
            ((w.index, w.viewers) for w in workers),
        )
        yield _per_worker(
            CounterMetricFamily,
            "camgate_send_worker_skipped_frames",
            "Frames not sent to a viewer because the send worker was too far behind.",
            ((w.index, w.skipped_frames) for w in workers),
        )
        yield _per_worker(
            CounterMetricFamily,
            "camgate_send_worker_cpu_seconds",
            "CPU time of the send worker process (user + system).",
            ((w.index, w.cpu_seconds) for w in workers if w.cpu_seconds is not None),
        )
        yield _per_worker(
            GaugeMetricFamily,
            "camgate_send_worker_resident_memory_bytes",
            "Resident memory of the send worker process.",
            ((w.index, w.resident_bytes) for w in workers if w.resident_bytes is not None),
        )


def _per_camera(
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    help: str,
    samples: Iterable[tuple[str, float]],
) -> Metric:
    family = kind(name, help, labels=["camera"])
    for camera, value in samples:
        family.add_metric([camera], value)
    return family


def _per_worker(
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    help: str,
    samples: Iterable[tuple[int, float]],
) -> Metric:
    family = kind(name, help, labels=["worker"])
    for index, value in samples:
        family.add_metric([str(index)], value)
    return family

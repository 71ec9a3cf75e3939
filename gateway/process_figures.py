"""Process figures for /metrics: the gateway's process_* families and its send workers'
CPU time and memory.

Not prometheus-client's ProcessCollector: it reads the boot time from /proc/stat and
reports nothing at all without it, and a hardened unit (ProcSubset=pid) hides /proc/stat.
Here CPU time comes from getrusage() (no /proc at all) and the rest from /proc/<pid>/,
which ProcSubset=pid and ProtectProc=invisible leave visible for the service's own
processes. A figure that can't be read is left out, never reported as 0.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PROC = Path("/proc")
STARTED_AT = time.time()  # this module is imported while the gateway starts


class ProcessCollector(Collector):
    """process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds and
    process_start_time_seconds of the gateway's own process."""

    def __init__(self, proc: Path = PROC, started_at: float = STARTED_AT) -> None:
        self._proc = proc
        self._started_at = started_at

    def collect(self) -> Iterator[Metric]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        yield CounterMetricFamily(
            "process_cpu_seconds",
            "CPU time (user + system).",
            value=usage.ru_utime + usage.ru_stime,
        )
        resident = resident_bytes("self", self._proc)
        if resident is not None:
            yield GaugeMetricFamily("process_resident_memory_bytes", "Resident memory.", resident)
        fds = open_fds(self._proc)
        if fds is not None:
            yield GaugeMetricFamily("process_open_fds", "Open file descriptors.", fds)
        yield GaugeMetricFamily(
            "process_start_time_seconds",
            "Start time of the process (Unix time).",
            self._started_at,
        )


def cpu_seconds(pid: int, proc: Path = PROC) -> float | None:
    """User + system CPU time of another process (a send worker)."""
    try:
        # The command name may hold spaces and parentheses: split after the last ')'.
        fields = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def resident_bytes(pid: int | str, proc: Path = PROC) -> int | None:
    try:
        pages = int((proc / str(pid) / "statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def open_fds(proc: Path = PROC) -> int | None:
    try:
        return len(os.listdir(proc / "self" / "fd"))
    except OSError:
        return None

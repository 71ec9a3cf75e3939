"""CPU time and memory of processes, from /proc (all threads of a process included)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of `pid`."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name may hold spaces and parentheses: split after the last ')'.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, summed over cores."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@dataclass(frozen=True)
class CpuWindow:
    """CPU use over one measuring window, in % of one core."""

    seconds: float
    percent: dict[str, float]  # per watched process name
    machine_percent: float  # whole machine, % of one core (max 100 * nproc)


class CpuMeter:
    """Start/stop CPU accounting for named processes."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = dict(pids)
        self._start: tuple[float, dict[str, float], tuple[float, float]] | None = None

    def start(self) -> None:
        self._start = (time.monotonic(), self._sample(), machine_busy_seconds())

    def stop(self) -> CpuWindow:
        if self._start is None:
            raise RuntimeError("CpuMeter.stop() before start()")
        t0, cpu0, (busy0, total0) = self._start
        elapsed = time.monotonic() - t0
        cpu1 = self._sample()
        busy1, total1 = machine_busy_seconds()
        cores = os.cpu_count() or 1
        percent = {name: 100.0 * (cpu1[name] - cpu0[name]) / elapsed for name in cpu0}
        machine = 100.0 * cores * (busy1 - busy0) / max(total1 - total0, 1e-9)
        return CpuWindow(seconds=elapsed, percent=percent, machine_percent=machine)

    def _sample(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self._pids.items()}

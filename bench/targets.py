"""The two systems under test, as processes: camgate and the aiortc baseline."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.procs import RIG_CPUS, SYSTEM_PYTHON, TARGET_CPUS, Child, Children, venv_python

CAMERA_NAME = "bench"
CAMGATE = "camgate"
BASELINE = "baseline"
TARGET_PORTS = {CAMGATE: 18080, BASELINE: 18081}

CAMGATE_CONFIG = """\
listen: 127.0.0.1:{port}
log_level: warning
auth: false             # benchmark viewers use no account
# Every benchmark viewer comes from one address, many at once: lift the per-client limits.
client_limits:
  connecting_per_client: 200
  connecting_total: 200
  viewers_per_client: 500
  viewers_total: 500
webrtc:
  ice_servers: []
  candidates:
    addresses: [127.0.0.1]
    ipv6: false
  send_workers: {send_workers}
cameras:
  - name: {camera}
    source: {rtsp_url}
    transport: tcp
    preload: true
"""


def camgate_command() -> list[str]:
    """The installed `camgate` console script next to this Python, else `python -m gateway`
    (the same entry point, for a source checkout that is not pip-installed)."""
    script = Path(venv_python()).parent / "camgate"
    return [str(script)] if script.exists() else [venv_python(), "-m", "gateway"]


@dataclass(frozen=True)
class RunningTarget:
    kind: str
    child: Child
    base_url: str

    @property
    def whep_url(self) -> str:
        return f"{self.base_url}/api/cameras/{CAMERA_NAME}/whep"

    @property
    def status_url(self) -> str:
        return f"{self.base_url}/api/cameras/{CAMERA_NAME}"

    def helper_pids(self) -> list[int]:
        """The target's child processes (camgate's send workers), free to use any core."""
        try:
            with open(f"/proc/{self.child.pid}/task/{self.child.pid}/children") as f:
                pids = [int(pid) for pid in f.read().split()]
        except OSError:
            return []
        for pid in pids:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(pid, os.sched_getaffinity(0))
        return pids


async def start_target(
    children: Children,
    kind: str,
    rtsp_url: str,
    run_dir: Path,
    timeout: float = 30.0,
    send_workers: int = 0,
) -> RunningTarget:
    """Start camgate (`camgate --config`, as `python -m gateway`) or the baseline and wait
    until its camera is live."""
    port = TARGET_PORTS[kind]
    if kind == CAMGATE:
        config = run_dir / "camgate.yaml"
        config.write_text(
            CAMGATE_CONFIG.format(
                port=port, camera=CAMERA_NAME, rtsp_url=rtsp_url, send_workers=send_workers
            )
        )
        argv = [*camgate_command(), "--config", str(config)]
    else:
        argv = [
            venv_python(), "-m", "bench.baseline_server",
            "--source", rtsp_url, "--listen", f"127.0.0.1:{port}", "--camera", CAMERA_NAME,
        ]  # fmt: skip
    child = await children.spawn(kind, argv, cpus=TARGET_CPUS)
    target = RunningTarget(kind, child, f"http://127.0.0.1:{port}")
    await _wait_live(target, timeout)
    return target


async def _wait_live(target: RunningTarget, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline:
            if not target.child.alive:
                raise RuntimeError(f"{target.kind} exited:\n{target.child.log_tail()}")
            try:
                async with http.get(target.status_url) as response:
                    if response.status == 200:
                        state = (await response.json()).get("state")
                        if state == "live":
                            return
                        last = f"state {state}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = repr(exc)
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{target.kind} not live after {timeout:g} s ({last})")


async def start_camera(children: Children, clip: Path, port: int = 18554) -> tuple[Child, str]:
    """The GStreamer camera (system python, for gi) looping `clip`; returns it and its URL."""
    argv = [SYSTEM_PYTHON, "-m", "bench.camera", "--clip", str(clip), "--port", str(port)]
    child = await children.spawn("camera", argv, pipe_stdio=True, cpus=RIG_CPUS)
    event = await child.read_json(timeout=20)
    if event.get("event") != "ready":
        raise RuntimeError(f"camera failed: {event}\n{child.log_tail()}")
    return child, str(event["url"])

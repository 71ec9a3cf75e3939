"""A malicious camera (tests/rig/hostile_camera.py) against camgate's RTSP client and hub:
each attack ends in a clear error or is shrugged off, and memory stays bounded."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.hub import CameraHub, CameraState
from gateway.media.accessunit import AccessUnit
from gateway.media.limits import MB, StreamLimits
from gateway.sources.base import SourceError, SourceLimitError
from gateway.sources.rtsp import RtspSource
from tests.rig.hostile_camera import HostileCamera, Hostility
from tests.rig.net import free_port, wait_port
from tests.rig.replay_camera import ReplayCamera, encode_pictures
from tests.rig.wait import wait_until

pytestmark = pytest.mark.attack

WAIT = 60.0  # generous: a loaded machine is slow; nothing here sleeps blindly


async def run_until_error(source: RtspSource, emit=lambda unit: None) -> SourceError:
    with pytest.raises(SourceError) as info:
        await asyncio.wait_for(source.run(emit), WAIT)
    return info.value


BROKEN = "the camera sent a broken RTSP stream: "


@pytest.mark.parametrize(
    ("behaviour", "kind", "message"),
    [
        (Hostility.HUGE_PICTURE, SourceLimitError, "picture larger than 4 MB: dropped"),
        (Hostility.ENDLESS_FU_A, SourceLimitError, "NAL unit larger than 4 MB: dropped"),
        (Hostility.GIANT_SDP, SourceError, BROKEN + "RTSP body of"),
        (Hostility.HUGE_HEADERS, SourceError, BROKEN + "RTSP header too large"),
    ],
)  # fmt: skip
async def test_an_attack_on_memory_ends_the_connection_with_a_clear_error(
    behaviour: Hostility, kind: type[SourceError], message: str
) -> None:
    async with HostileCamera(behaviour=behaviour) as camera:
        source = RtspSource(f"rtsp://127.0.0.1:{camera.port}/cam")
        error = await run_until_error(source)
    assert type(error) is kind
    assert str(error).startswith(message)
    assert source._assembler._bytes <= StreamLimits().picture_bytes
    assert source._depacketizer._fu_size <= StreamLimits().picture_bytes


async def test_the_picture_cap_follows_the_configured_limit() -> None:
    async with HostileCamera(behaviour=Hostility.HUGE_PICTURE) as camera:
        limits = StreamLimits(picture_bytes=1 * MB)
        source = RtspSource(f"rtsp://127.0.0.1:{camera.port}/cam", limits=limits)
        error = await run_until_error(source)
    assert str(error) == "picture larger than 1 MB: dropped; reconnecting"
    assert source._assembler.oversized == 1


async def test_a_camera_that_never_answers_says_so() -> None:
    async with HostileCamera(behaviour=Hostility.SILENT) as camera:
        source = RtspSource(f"rtsp://127.0.0.1:{camera.port}/cam", timeout=1.0)
        error = await run_until_error(source)
    assert str(error) == "no answer within 1 s (to OPTIONS)"


async def test_an_unknown_host_name_says_it_cannot_be_resolved() -> None:
    source = RtspSource("rtsp://admin:hunter2@camera.invalid/stream", timeout=5.0)
    error = await run_until_error(source)
    assert str(error) == "cannot resolve camera.invalid"


async def test_an_absurd_sps_is_refused_and_never_live() -> None:
    async with HostileCamera(behaviour=Hostility.ABSURD_SPS, frames=100_000) as camera:
        url = f"rtsp://127.0.0.1:{camera.port}/cam"
        hub = CameraHub("absurd", lambda: RtspSource(url), preload=True)
        states: list[CameraState] = []
        hub.add_listener(lambda: states.append(hub.state))
        await hub.boot()
        try:
            await wait_until(lambda: hub.error is not None, WAIT)
            assert "65535x65535" in hub.error and "level 6.2" in hub.error
            assert hub.error.endswith(": refused")
            assert CameraState.LIVE not in states
            assert hub.status().state != "live" and hub.status().width is None
        finally:
            await hub.close()


async def test_wild_sequence_numbers_are_losses_not_a_crash() -> None:
    async with HostileCamera(behaviour=Hostility.WILD_SEQUENCE) as camera:
        source = RtspSource(f"rtsp://127.0.0.1:{camera.port}/cam")
        task = asyncio.create_task(source.run(lambda unit: None))
        try:
            await wait_until(lambda: camera.packets_sent >= 20_000 or task.done(), WAIT)
            assert not task.done()
            await wait_until(lambda: source.packets_received >= 10_000, WAIT)
            assert source.packets_lost > 0
            assert source._assembler._bytes <= 1024  # the dropped pictures are not kept
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_a_flood_on_foreign_channels_leaves_the_video_going() -> None:
    units: list[AccessUnit] = []
    async with HostileCamera(behaviour=Hostility.CHANNEL_FLOOD) as camera:
        source = RtspSource(f"rtsp://127.0.0.1:{camera.port}/cam")
        task = asyncio.create_task(source.run(units.append))
        try:
            await wait_until(lambda: len(units) >= 200 or task.done(), WAIT)
            assert not task.done()
            assert camera.bytes_sent > 6 * 200 * 0xFFFF  # the flood went through our parser
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


# --- the whole gateway, as a process ---------------------------------------------------

NORMAL = encode_pictures(320, 240, frames=60, gop=30)
SOAK_S = 30.0  # how long the attack runs: a bound on memory, not a timing
RSS_GROWTH_BOUND = 50 * MB


def memory_kb(pid: int, field: str) -> int:
    """VmRSS (resident now) or VmHWM (the most it ever was) of a process, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


async def camera_facts(session: aiohttp.ClientSession, base: str, name: str) -> dict[str, Any]:
    async with session.get(f"{base}/api/cameras/{name}") as response:
        response.raise_for_status()
        facts: dict[str, Any] = await response.json()
        return facts


async def metric(session: aiohttp.ClientSession, base: str, name: str, camera: str) -> float:
    async with session.get(f"{base}/metrics") as response:
        text = await response.text()
    prefix = f'{name}{{camera="{camera}"}} '
    (line,) = (line for line in text.splitlines() if line.startswith(prefix))
    return float(line[len(prefix) :])


async def test_a_hostile_camera_for_30_s_grows_camgate_by_at_most_50_mb(tmp_path: Path) -> None:
    hostile = HostileCamera(behaviour=Hostility.HUGE_PICTURE)
    hostile.armed.clear()  # measure the gateway before the attack
    async with hostile, ReplayCamera(segments=[NORMAL]) as normal:
        port = free_port()
        config = {
            "listen": f"127.0.0.1:{port}",
            "auth": False,
            "state_dir": str(tmp_path / "state"),
            "cameras": [
                {"name": name, "source": f"rtsp://127.0.0.1:{cam.port}/cam", "preload": True}
                for name, cam in (("hostile", hostile), ("normal", normal))
            ],
        }
        path = tmp_path / "camgate.yaml"
        path.write_text(json.dumps(config))
        log_path = tmp_path / "camgate.log"
        with log_path.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.cli", "--config", str(path),
                stdout=log_file, stderr=log_file, cwd=os.getcwd(),
            )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_port(port, timeout=WAIT)
            async with aiohttp.ClientSession() as session:

                async def normal_is_live() -> bool:
                    return (await camera_facts(session, base, "normal"))["state"] == "live"

                await wait_until_async(normal_is_live, WAIT)
                await wait_until(lambda: hostile.connections >= 1, WAIT)
                before = memory_kb(process.pid, "VmRSS") * 1024
                frames_before = await metric(
                    session, base, "camgate_camera_frames_received_total", "normal"
                )
                hostile.armed.set()
                errors: set[str] = set()
                loop = asyncio.get_running_loop()
                end = loop.time() + SOAK_S
                while loop.time() < end:
                    facts = await camera_facts(session, base, "hostile")
                    if facts["error"]:
                        errors.add(facts["error"])
                    await asyncio.sleep(0.25)  # sampling the API, not waiting for it
                peak = memory_kb(process.pid, "VmHWM") * 1024
                normal_facts = await camera_facts(session, base, "normal")
                frames_after = await metric(
                    session, base, "camgate_camera_frames_received_total", "normal"
                )
                drops = await metric(session, base, "camgate_camera_limit_drops_total", "hostile")
        finally:
            process.terminate()
            await process.wait()
    print(
        f"hostile camera: {hostile.bytes_sent / MB:.0f} MB sent over {hostile.connections} "
        f"connections in {SOAK_S:g} s; camgate RSS {before / MB:.1f} MB before, "
        f"peak {peak / MB:.1f} MB (+{(peak - before) / MB:.1f} MB)"
    )
    assert hostile.bytes_sent > 5 * StreamLimits().picture_bytes  # the attack was delivered
    assert peak - before <= RSS_GROWTH_BOUND
    assert "picture larger than 4 MB: dropped; reconnecting" in errors
    assert drops >= 1
    assert normal_facts["state"] == "live" and normal_facts["error"] is None
    assert frames_after > frames_before + SOAK_S * 10  # ~30 fps kept coming beside it
    log = log_path.read_text()
    assert "Traceback" not in log


async def wait_until_async(predicate: Callable[[], Awaitable[bool]], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.1)


async def test_a_gop_that_never_ends_is_capped_and_the_video_goes_on() -> None:
    async with HostileCamera(behaviour=Hostility.ENDLESS_GOP) as camera:
        url = f"rtsp://127.0.0.1:{camera.port}/cam"
        limits = StreamLimits(gop_bytes=8 * MB)
        hub = CameraHub(
            "long-gop", lambda: RtspSource(url, limits=limits), preload=True, limits=limits
        )
        await hub.boot()
        try:
            # Over 8 MB the cache is emptied (once: it stays empty until the next IDR).
            await wait_until(lambda: hub.status().limit_drops == 1, WAIT)
            frames = hub.frames_received
            await wait_until(lambda: hub.frames_received >= frames + 20, WAIT)
            assert hub._gop.nbytes == 0 and hub.status().limit_drops == 1
            assert hub.state is CameraState.LIVE and hub.reconnects == 0
        finally:
            await hub.close()

"""Bad cameras and signals never hurt the gateway or other viewers."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import RtspServerFactory, WhepViewerFactory
from tests.integration.conftest import GatewayFactory, free_port
from tests.rig.fake_camera import FakeCamera
from tests.rig.streams import testsrc_h264
from tests.rig.wait import wait_until

pytestmark = pytest.mark.rtsp


async def test_a_camera_sending_broken_nal_units_hurts_nobody_else(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    server = await rtsp_server({"/cam": testsrc_h264()})
    async with FakeCamera(junk_nals=True, frames=10_000) as junk:
        gw = await start_gateway(
            cameras=[
                {"name": "good", "source": server.url("/cam")},
                {"name": "junk", "source": f"rtsp://127.0.0.1:{junk.port}/cam", "preload": True},
            ]
        )
        good = await whep_viewer(gw.base_url, "good")
        junk_viewer = await whep_viewer(gw.base_url, "junk")
        await wait_until(lambda: gw.hub("junk").frames_received > 200)
        start = good.frames_received
        await good.wait_frames(start + 60, timeout=30)
        assert junk_viewer.connection_state == "connected"
        async with aiohttp.ClientSession(gw.base_url) as http:
            cams = {c["name"]: c for c in await (await http.get("/api/cameras")).json()}
        assert cams["good"]["state"] == "live" and cams["good"]["width"] == 640


async def test_sigterm_closes_viewers_and_camera_sessions_and_exits_zero(
    rtsp_server: RtspServerFactory, whep_viewer: WhepViewerFactory, tmp_path: Path
) -> None:
    server = await rtsp_server({"/cam": testsrc_h264()})
    port = free_port()
    config = tmp_path / "camgate.yaml"
    config.write_text(
        f"listen: 127.0.0.1:{port}\n"
        "webrtc: {candidates: {addresses: [127.0.0.1]}}\n"
        f"auth: false\nstate_dir: {tmp_path / 'state'}\n"
        f"cameras: [{{name: cam, source: '{server.url('/cam')}', preload: true}}]\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(base) as http:

            async def live() -> bool:
                try:
                    cams = await (await http.get("/api/cameras")).json()
                except aiohttp.ClientError:
                    return False
                return cams[0]["state"] == "live"

            async with asyncio.timeout(60):
                while not await live():
                    await asyncio.sleep(0.1)
        viewer = await whep_viewer(base, "cam")
        await viewer.wait_frames(10, timeout=30)
        assert (await server.status())["sessions"] == 1
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, output.decode()
        assert b"Traceback" not in output
        await server.wait_for(lambda status: status["sessions"] == 0, timeout=20)
        await wait_until(lambda: viewer.connection_state in ("closed", "failed"), timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

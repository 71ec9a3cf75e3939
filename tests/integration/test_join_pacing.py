"""A viewer joining mid-GOP gets the cached GOP paced, so an independent receiver (aiortc
in its own process, default socket buffer) loses no packet of it, alone or with seven
others at once. Through the in-process send path and through send workers."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

import pytest

from tests.conftest import RtspServerFactory
from tests.integration.conftest import GatewayFactory
from tests.rig.streams import testsrc_h264
from tests.rig.wait import wait_until

# 2 s GOP at 4 Mbit/s of noise: joined late in the GOP, a burst of ~700 KB (~600 packets).
CAMERA = testsrc_h264(width=960, height=540, gop=60, bitrate_kbps=4000, pattern="snow")
log = logging.getLogger("test")


async def independent_receiver(base_url: str, frames: int) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.rig.whep_receiver", base_url, "cam", str(frames), "60",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        stdout, _ = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        if proc.returncode is None:
            proc.kill()
            await asyncio.wait_for(proc.wait(), 10)
    assert proc.returncode == 0, "the receiver failed"
    return dict(json.loads(stdout.decode().strip().splitlines()[-1]))


async def join_late_in_the_gop(
    rtsp_server: RtspServerFactory,
    start_gateway: GatewayFactory,
    viewers: int,
    send_workers: int,
) -> list[dict[str, Any]]:
    server = await rtsp_server({"/cam": CAMERA}, keep_encoding=True)
    camera = {"name": "cam", "source": server.url("/cam"), "preload": True}
    webrtc = {"candidates": {"addresses": ["127.0.0.1"]}, "send_workers": send_workers}
    gw = await start_gateway(cameras=[camera], webrtc=webrtc)
    hub = gw.hub("cam")
    await hub.wait_live(30)
    await wait_until(lambda: hub.status().gop_frames >= 45, timeout=30)
    # 60 frames: the burst (~45) and live frames after it
    runs = (independent_receiver(gw.base_url, 60) for _ in range(viewers))
    return list(await asyncio.gather(*runs))


@pytest.mark.parametrize("send_workers", [0, 2])
async def test_a_late_joiner_loses_no_packet(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, send_workers: int
) -> None:
    [result] = await join_late_in_the_gop(rtsp_server, start_gateway, 1, send_workers)
    log.info("one joiner: %s", result)
    assert result["first_keyframe"] and result["packets_lost"] == 0


async def test_eight_joining_at_once_lose_no_packet(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory
) -> None:
    results = await join_late_in_the_gop(rtsp_server, start_gateway, 8, 0)
    lost = [r["packets_lost"] for r in results]
    log.info("packets lost per viewer: %s", lost)
    assert lost == [0] * 8

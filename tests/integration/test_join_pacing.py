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


class IndependentReceiver:
    """tests.rig.whep_receiver in its own process, started (imports done) before it joins."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, base_url: str, frames: int) -> IndependentReceiver:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.rig.whep_receiver", base_url, "cam", str(frames), "60",
            "--on-go", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        receiver = cls(proc)
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
        except BaseException:
            await receiver.kill()
            raise
        assert line.strip() == b"ready", f"the receiver did not start: {line!r}"
        return receiver

    async def run(self) -> dict[str, Any]:
        """Join now; the receiver's result once it has its frames."""
        proc = self.proc
        try:
            stdout, _ = await asyncio.wait_for(proc.communicate(b"go\n"), 90)
        finally:
            await self.kill()
        assert proc.returncode == 0, "the receiver failed"
        return dict(json.loads(stdout.decode().strip().splitlines()[-1]))

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await asyncio.wait_for(self.proc.wait(), 10)


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
    # 60 frames: the burst (~45) and live frames after it
    starting = [IndependentReceiver.start(gw.base_url, 60) for _ in range(viewers)]
    started = await asyncio.gather(*starting, return_exceptions=True)
    receivers = [r for r in started if isinstance(r, IndependentReceiver)]
    try:
        for failure in started:
            if isinstance(failure, BaseException):
                raise failure
        await wait_until(lambda: hub.status().gop_frames >= 45, timeout=30)
        return list(await asyncio.gather(*(r.run() for r in receivers)))
    finally:
        for receiver in receivers:
            await receiver.kill()


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

"""The camera's audio on the fast send path is pushed: the fan-out sends each packet to
every listener in one loop at its arrival (no task per viewer woken per packet), and a
listener whose connection breaks or who stops reading costs the others nothing."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.audio.fanout import AudioFanout
from gateway.media.audio import AudioPacket
from gateway.sources.demo_audio import PACKET_SAMPLES
from gateway.webrtc.fastsend import FastSender
from gateway.webrtc.session import WhepSession as ViewerSession
from tests.integration.conftest import GatewayFactory, RunningGateway
from tests.rig.audio_viewer import AudioWhepViewer
from tests.rig.netns import NetNamespace

SMALL = {"width": 320, "height": 240, "fps": 10, "bitrate_kbps": 400, "gop_seconds": 1}
DEMO = [{"name": "cam", "source": "demo", "demo": SMALL, "preload": True}]
PACKETS = 50  # one second of the demo's 20 ms packets


@pytest.fixture
async def listeners(netns: NetNamespace | None) -> AsyncIterator[list[AudioWhepViewer]]:
    viewers: list[AudioWhepViewer] = []
    yield viewers
    for viewer in viewers:
        with contextlib.suppress(Exception):
            await viewer.close()


async def _listen(
    gw: RunningGateway, viewers: list[AudioWhepViewer], count: int
) -> list[ViewerSession]:
    """`count` listeners, each with its session in the gateway (in the same order)."""
    sessions: list[ViewerSession] = []
    for _ in range(count):
        known = {id(session) for session in gw.gateway.sessions}
        viewers.append(await AudioWhepViewer(gw.base_url, "cam", decode_audio=False).start())
        (new,) = [session for session in gw.gateway.sessions if id(session) not in known]
        sessions.append(new)
    for viewer in viewers:
        await viewer.wait_audio(5, timeout=60)
    return sessions


def _send_loop(session: ViewerSession) -> FastSender:
    assert session.audio is not None and session.audio.send_loop is not None
    return session.audio.send_loop


class _Sends:
    """Per packet the fan-out delivered: how many packets each listener's pump had sent
    more when the fan-out returned."""

    def __init__(self, fanout: AudioFanout, loops: list[FastSender]) -> None:
        self.loops = loops
        self.steps: list[list[int]] = []
        self._last = [loop.sent_packets for loop in loops]
        self._enough = asyncio.Event()
        self._fanout = fanout
        fanout.delivered = self._delivered

    def _delivered(self, _packet: AudioPacket, _began: float) -> None:
        now = [loop.sent_packets for loop in self.loops]
        self.steps.append([b - a for a, b in zip(self._last, now, strict=True)])
        self._last = now
        if len(self.steps) >= PACKETS:
            self._enough.set()

    async def wait(self) -> list[list[int]]:
        try:
            await asyncio.wait_for(self._enough.wait(), 60)
        finally:
            # Unhooked: aiohttp caches the app, and with it this gateway, beyond the test;
            # the hook would keep the closed viewers' sessions alive there.
            self._fanout.delivered = None
        return self.steps


def _contiguous(viewer: AudioWhepViewer, start: int, count: int) -> bool:
    records = viewer.audio[start : start + count]
    steps = {(b.timestamp - a.timestamp) % (1 << 32) for a, b in itertools.pairwise(records)}
    return len(records) == count and steps == {PACKET_SAMPLES}


async def test_each_packet_reaches_every_listeners_socket_before_the_fanout_returns(
    start_gateway: GatewayFactory, listeners: list[AudioWhepViewer]
) -> None:
    gw = await start_gateway(cameras=DEMO)
    sessions = await _listen(gw, listeners, 3)
    loops = [_send_loop(session) for session in sessions]
    sends = _Sends(gw.hub("cam").audio, loops)
    # A task per viewer would send after the fan-out returned: 0 here, 2 at times later.
    assert await sends.wait() == [[1, 1, 1]] * len(sends.steps)


async def test_a_broken_and_a_stalled_listener_cost_the_others_nothing(
    start_gateway: GatewayFactory, listeners: list[AudioWhepViewer]
) -> None:
    gw = await start_gateway(cameras=DEMO)
    sessions = await _listen(gw, listeners, 3)
    _broken, stalled, healthy = listeners
    loops = [_send_loop(session) for session in sessions]
    # Every send to one listener fails from now on (its pump aims at an address the
    # kernel refuses: sendmmsg raises); another viewer stops reading.
    broken: Any = loops[0].pump
    assert broken.batch.aim(socket.AF_INET, ("255.255.255.255", 9))
    sent_before = broken.sent_packets
    stalled.stall()
    heard_from = len(healthy.audio)
    sends = _Sends(gw.hub("cam").audio, loops)
    steps = await sends.wait()
    assert all(step[1:] == [1, 1] for step in steps), steps  # every packet, to both
    assert broken.sent_packets == sent_before  # its sends did fail
    await healthy.wait_audio(heard_from + PACKETS, timeout=60)
    assert _contiguous(healthy, heard_from, PACKETS)
    stalled.resume()
    resumed_at = len(stalled.audio)
    await stalled.wait_audio(resumed_at + 10, timeout=60)

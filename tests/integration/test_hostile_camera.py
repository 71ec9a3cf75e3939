"""A malicious camera (tests/rig/hostile_camera.py) against camgate's RTSP client and hub:
each attack ends in a clear error or is shrugged off, and memory stays bounded."""

from __future__ import annotations

import asyncio

import pytest

from gateway.hub import CameraHub, CameraState
from gateway.media.accessunit import AccessUnit
from gateway.media.limits import MB, StreamLimits
from gateway.sources.base import SourceError, SourceLimitError
from gateway.sources.rtsp import RtspSource
from tests.rig.hostile_camera import HostileCamera, Hostility
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
            assert hub.snapshot()["state"] != "live" and hub.snapshot()["width"] is None
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

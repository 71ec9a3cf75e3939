"""JPEG snapshots over HTTP: one keyframe decoded (never a transcode), from the demo camera
and from a real RTSP server; an idle camera is woken for it and then left to linger."""

from __future__ import annotations

import io

import aiohttp
import av
import pytest

from gateway.media.accessunit import AccessUnit
from tests.conftest import RtspServerFactory
from tests.integration.conftest import GatewayFactory
from tests.rig.streams import testsrc_h264
from tests.rig.wait import wait_until

SMALL_DEMO = {"width": 320, "height": 240, "fps": 15, "bitrate_kbps": 300, "gop_seconds": 1}


def jpeg_size(data: bytes) -> tuple[int, int]:
    """Decode the JPEG with FFmpeg (PyAV): proves it is a whole, valid picture."""
    assert data[:3] == b"\xff\xd8\xff"
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


async def get(url: str) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, response.content_type, await response.read()


async def test_idle_camera_is_woken_for_a_snapshot_then_lingers_off(
    start_gateway: GatewayFactory,
) -> None:
    cam = {"name": "cam", "source": "demo", "demo": SMALL_DEMO, "linger": 0.5}
    gw = await start_gateway(cameras=[cam])
    hub = gw.hub("cam")
    assert not hub.running
    status, kind, body = await get(gw.base_url + "/api/cameras/cam/snapshot.jpg")
    assert (status, kind) == (200, "image/jpeg")
    assert jpeg_size(body) == (320, 240)
    assert hub.viewers == 0  # a snapshot is not a viewer
    await wait_until(lambda: not hub.running, timeout=20)


async def test_one_decode_per_keyframe(start_gateway: GatewayFactory) -> None:
    gop = {**SMALL_DEMO, "gop_seconds": 10}
    gw = await start_gateway(
        cameras=[{"name": "cam", "source": "demo", "demo": gop, "preload": True}]
    )
    await gw.hub("cam").wait_live(20)
    snapshotter = gw.gateway.snapshotters["cam"]
    keyframes = gw.hub("cam").keyframes_received
    bodies = [(await get(gw.base_url + "/api/cameras/cam/snapshot.jpg"))[2] for _ in range(3)]
    if gw.hub("cam").keyframes_received == keyframes:  # no new IDR in between
        assert snapshotter.decodes == 1 and bodies[0] == bodies[1] == bodies[2]


async def test_rtsp_camera_snapshot(
    start_gateway: GatewayFactory, rtsp_server: RtspServerFactory
) -> None:
    server = await rtsp_server({"/cam": testsrc_h264(width=640, height=360, gop=30)})
    gw = await start_gateway(cameras=[{"name": "cam", "source": server.url("/cam")}])
    status, _, body = await get(gw.base_url + "/api/cameras/cam/snapshot.jpg")
    assert status == 200 and jpeg_size(body) == (640, 360)


async def test_unreachable_camera_and_unknown_camera(start_gateway: GatewayFactory) -> None:
    source = "rtsp://admin:hunter2@127.0.0.1:9/stream"  # nothing listens on port 9
    gw = await start_gateway(cameras=[{"name": "down", "source": source}])
    gw.gateway.snapshotters["down"].timeout_s = 3.0  # refused at once: no need to wait long
    status, kind, body = await get(gw.base_url + "/api/cameras/down/snapshot.jpg")
    assert (status, kind) == (503, "application/json")
    assert b"hunter2" not in body and b"error" in body
    status, _, body = await get(gw.base_url + "/api/cameras/nope/snapshot.jpg")
    assert status == 404


async def test_one_undecodable_keyframe_waits_for_the_next(
    start_gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway import snapshot

    gw = await start_gateway(
        cameras=[{"name": "cam", "source": "demo", "demo": SMALL_DEMO, "preload": True}]
    )
    await gw.hub("cam").wait_live(20)
    real, tried = snapshot.keyframe_to_jpeg, []

    def damaged_first(unit: AccessUnit) -> snapshot.Snapshot:
        tried.append(unit)
        if len(tried) == 1:  # the camera's glitch: this one IDR does not decode
            raise snapshot.SnapshotError("the camera's keyframe could not be decoded")
        return real(unit)

    monkeypatch.setattr(snapshot, "keyframe_to_jpeg", damaged_first)
    status, kind, body = await get(gw.base_url + "/api/cameras/cam/snapshot.jpg")
    assert (status, kind) == (200, "image/jpeg"), body
    assert jpeg_size(body) == (320, 240)
    assert len(tried) == 2 and tried[0] is not tried[1]  # the next keyframe, not a retry


async def test_a_damaged_poster_is_replaced_by_the_next_keyframe(
    start_gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """?cached=1 (a tile's poster) whose kept keyframe does not decode takes the camera's
    next one instead of answering 503."""
    from gateway import snapshot

    gw = await start_gateway(
        cameras=[{"name": "cam", "source": "demo", "demo": SMALL_DEMO, "preload": True}]
    )
    hub = gw.hub("cam")
    await hub.wait_live(20)
    await wait_until(lambda: hub.last_keyframe is not None, timeout=20)
    poster = hub.last_keyframe
    real, tried = snapshot.keyframe_to_jpeg, []

    def poster_damaged(unit: AccessUnit) -> snapshot.Snapshot:
        tried.append(unit)
        if unit is poster:
            raise snapshot.SnapshotError("the camera's keyframe could not be decoded")
        return real(unit)

    monkeypatch.setattr(snapshot, "keyframe_to_jpeg", poster_damaged)
    status, kind, body = await get(gw.base_url + "/api/cameras/cam/snapshot.jpg?cached=1")
    assert (status, kind) == (200, "image/jpeg"), body
    assert jpeg_size(body) == (320, 240)
    assert tried[0] is poster and poster not in tried[1:]  # never decoded twice


def test_an_undecodable_keyframe_is_described_by_its_nal_types_only() -> None:
    from gateway.snapshot import SnapshotError, keyframe_to_jpeg, nal_outline

    unit = AccessUnit((b"\x67\x00", b"\x68", b"\x65" + b"\xff" * 40), 0, True, 0.0)
    assert nal_outline(unit) == "7:2 8:1 5:41"
    with pytest.raises(SnapshotError, match="could not be decoded"):
        keyframe_to_jpeg(unit)

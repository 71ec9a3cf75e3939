"""Main and sub streams end to end: GStreamer RTSP cameras with two mounts -> camgate ->
real aiortc viewers that switch on the "stream" data channel (docs/streams.md)."""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from gateway.camera_status import CameraState
from gateway.compat.check import FORCE_ENV
from gateway.media.h264 import NAL_IDR, NAL_PPS, NAL_SPS, nal_type, parse_sps, split_annexb
from tests.conftest import MosquittoFactory, RtspServerFactory, WhepViewerFactory
from tests.integration.conftest import GatewayFactory, RunningGateway
from tests.rig.audio_streams import testsrc_with_audio
from tests.rig.audio_viewer import AudioWhepViewer
from tests.rig.mqtt_probe import MqttProbe, Seen
from tests.rig.onvif_device import OnvifTestDevice, Profile
from tests.rig.streams import testsrc_h264
from tests.rig.wait import wait_until
from tests.rig.whep_client import WhepViewer

pytestmark = pytest.mark.rtsp

onvif_needed = pytest.mark.skipif(
    importlib.util.find_spec("onvif") is None, reason="onvif-zeep-async is not installed"
)
MAIN = (640, 360)
SUB = (320, 180)


async def two_stream_camera(
    rtsp_server: RtspServerFactory,
    start_gateway: GatewayFactory,
    settings: dict[str, Any] | None = None,
    **camera: Any,
) -> tuple[Any, RunningGateway]:
    server = await rtsp_server(
        {"/main": testsrc_h264(*MAIN, gop=30), "/sub": testsrc_h264(*SUB, gop=30)}
    )
    gw = await start_gateway(
        cameras=[
            {
                "name": "cam",
                "source": server.url("/main"),
                "substream": server.url("/sub"),
                **camera,
            }
        ],
        **(settings or {}),
    )
    return server, gw


def size(viewer: WhepViewer) -> tuple[int | None, int | None]:
    frame = viewer.frames[-1]
    return frame.width, frame.height


async def wait_size(viewer: WhepViewer, wanted: tuple[int, int], timeout: float = 30) -> int:
    """Wait until the viewer decodes a picture of `wanted` size; returns its index."""
    await viewer._wait(lambda: bool(viewer.frames) and size(viewer) == wanted, timeout, str(wanted))
    return len(viewer.frames) - 1


def assert_rtp_continuous(viewer: WhepViewer) -> None:
    """One SSRC, sequence numbers without a gap or a repeat, timestamps never backwards."""
    ssrcs = {ssrc for _, _, ssrc in viewer.rtp_log}
    assert len(ssrcs) == 1, ssrcs
    for (seq_a, ts_a, _), (seq_b, ts_b, _) in zip(viewer.rtp_log, viewer.rtp_log[1:], strict=False):
        assert (seq_b - seq_a) % 65536 == 1, (seq_a, seq_b)
        assert (ts_b - ts_a) % 2**32 < 2**31, (ts_a, ts_b)


def assert_parameter_sets_in_band(viewer: WhepViewer, switches: int) -> None:
    """Every IDR arrives after its SPS and PPS in the same picture, and the picture size
    (the SPS) changed `switches` times, each time at an IDR."""
    sizes: list[tuple[int, int]] = []
    for record in viewer.encoded:
        nals = split_annexb(record.data)
        types = [nal_type(n) for n in nals]
        if NAL_IDR not in types:
            continue
        assert types.index(NAL_SPS) < types.index(NAL_PPS) < types.index(NAL_IDR), types
        info = parse_sps(nals[types.index(NAL_SPS)])
        if not sizes or sizes[-1] != (info.width, info.height):
            sizes.append((info.width, info.height))
    assert len(sizes) == switches + 1, sizes


@pytest.mark.parametrize("send_path", ["fast", "fallback", "workers"])
async def test_a_viewer_switches_grid_full_grid_on_one_peer_connection(
    rtsp_server: RtspServerFactory,
    start_gateway: GatewayFactory,
    whep_viewer: WhepViewerFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    send_path: str,
) -> None:
    """On either send path, and through a send worker: they all read the viewer's track."""
    caplog.set_level(logging.WARNING, logger="aiortc")
    settings: dict[str, Any] = {}
    if send_path == "fallback":
        monkeypatch.setenv(FORCE_ENV, "fallback")
    elif send_path == "workers":
        settings["webrtc"] = {"candidates": {"addresses": ["127.0.0.1"]}, "send_workers": 1}
    _, gw = await two_stream_camera(rtsp_server, start_gateway, settings=settings)
    viewer = await whep_viewer(
        gw.base_url, "cam", decode=True, keep_encoded=True, query="view=grid", stream=True
    )
    await wait_size(viewer, SUB)  # a grid tile starts on the sub stream: no switch
    await viewer.wait_stream_open()
    status = await viewer.wait_stream_status(lambda m: m["current"] == "sub")
    assert status["streams"] == ["main", "sub"] and status["view"] == "grid"
    assert gw.hub("cam").switches == {}

    viewer.send_stream({"type": "view", "view": "full"})
    full_at = await wait_size(viewer, MAIN)
    status = await viewer.wait_stream_status(lambda m: m["current"] == "main")
    assert status["reason"] == "view"
    await viewer.wait_frames(full_at + 30, timeout=30)  # the main stream goes on

    viewer.send_stream({"type": "view", "view": "grid"})
    grid_at = await wait_size(viewer, SUB)
    await viewer.wait_frames(grid_at + 30, timeout=30)

    assert gw.hub("cam").switches == {"view": 2}
    (session,) = gw.gateway.sessions  # the same session and peer connection throughout
    assert (session.send_loop is None) == (send_path == "fallback")
    assert all(f.width for f in viewer.frames[full_at:grid_at])  # nothing undecodable between
    pts = [f.timestamp for f in viewer.frames]
    assert pts == sorted(pts)
    assert_rtp_continuous(viewer)
    assert_parameter_sets_in_band(viewer, switches=2)
    decoder_trouble = [r for r in caplog.records if r.name.startswith("aiortc")]
    assert decoder_trouble == []
    # Back in the grid, the main stream is not held any more than any idle camera is.
    assert gw.hub("cam").viewers == 0 and gw.hub("cam").substream.viewers == 1


async def test_the_sub_stream_connects_only_while_needed(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    _, gw = await two_stream_camera(rtsp_server, start_gateway, linger=1)
    main, sub = gw.hub("cam"), gw.hub("cam").substream
    assert sub is not None
    viewer = await whep_viewer(gw.base_url, "cam", decode=True, stream=True)  # full view
    await wait_size(viewer, MAIN)
    assert sub.state is CameraState.IDLE and not sub.running

    await viewer.wait_stream_open()
    viewer.send_stream({"type": "view", "view": "grid"})
    await wait_size(viewer, SUB)
    assert sub.state is CameraState.LIVE
    await wait_until(lambda: not main.running, timeout=30)  # the main lingered, then left

    viewer.send_stream({"type": "view", "view": "full"})
    await wait_size(viewer, MAIN)
    await wait_until(lambda: not sub.running and sub.state is CameraState.IDLE, timeout=30)
    status = await api_camera(gw)
    assert [s["name"] for s in status["streams"]] == ["main", "sub"]
    assert status["streams"][1]["state"] == "idle"
    assert status["streams"][0]["width"] == MAIN[0]
    assert status["streams"][1]["width"] == SUB[0]  # known from when it was live


async def test_a_pin_holds_the_stream_and_keyframe_requests_go_to_it(
    rtsp_server: RtspServerFactory,
    start_gateway: GatewayFactory,
    whep_viewer: WhepViewerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, gw = await two_stream_camera(rtsp_server, start_gateway)
    main, sub = gw.hub("cam"), gw.hub("cam").substream
    asked: list[str] = []
    monkeypatch.setattr(main, "request_keyframe", lambda: asked.append("main"))
    monkeypatch.setattr(sub, "request_keyframe", lambda: asked.append("sub"))
    viewer = await whep_viewer(gw.base_url, "cam", decode=True, query="view=full&pin=sub")
    await wait_size(viewer, SUB)
    assert main.viewers == 0
    await viewer.send_pli()
    await wait_until(lambda: "sub" in asked, timeout=30)
    assert "main" not in asked


async def test_sound_stays_with_the_main_stream_held_in_full_view_only(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory
) -> None:
    """A listener whose picture is the sub stream hears the camera (its sound comes with
    the main stream) while in full view; in the grid it does not hold the main stream."""
    server = await rtsp_server(
        {
            "/main": testsrc_with_audio("PCMU", width=MAIN[0], height=MAIN[1], gop=30),
            "/sub": testsrc_h264(*SUB, gop=30),
        }
    )
    camera = {"name": "cam", "source": server.url("/main"), "substream": server.url("/sub")}
    gw = await start_gateway(cameras=[{**camera, "linger": 1}])
    main = gw.hub("cam")
    viewer = AudioWhepViewer(
        gw.base_url, "cam", decode=True, query="pin=sub", stream=True, decode_audio=False
    )
    try:
        await viewer.start()
        await wait_size(viewer, SUB)
        await viewer._wait(lambda: len(viewer.audio) > 0, 30, "audio")
        assert main.viewers == 0 and main.running  # held for the sound alone
        heard = len(viewer.audio)
        await viewer._wait(lambda: len(viewer.audio) > heard + 100, 30, "more audio")  # 2 s
        assert main.running

        await viewer.wait_stream_open()
        viewer.send_stream({"type": "view", "view": "grid"})
        await viewer.wait_stream_status(lambda m: m["view"] == "grid")
        await wait_until(lambda: not main.running, timeout=30)
    finally:
        await viewer.close()


async def test_a_grid_tile_on_a_cold_camera_gets_its_sound_track_without_holding_main(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory
) -> None:
    server = await rtsp_server(
        {
            "/main": testsrc_with_audio("PCMU", width=MAIN[0], height=MAIN[1], gop=30),
            "/sub": testsrc_h264(*SUB, gop=30),
        }
    )
    camera = {"name": "cam", "source": server.url("/main"), "substream": server.url("/sub")}
    gw = await start_gateway(cameras=[{**camera, "linger": 1}])
    main = gw.hub("cam")
    viewer = AudioWhepViewer(gw.base_url, "cam", query="view=grid", decode_audio=False)
    try:
        await viewer.start()
        await viewer.wait_frames(10, timeout=30)
        (session,) = gw.gateway.sessions
        assert session.audio is not None  # the main stream told its audio format
        assert session.feed.current == "sub"
        await wait_until(lambda: not main.running, timeout=30)  # then it left again
    finally:
        await viewer.close()


async def test_a_camera_without_a_sub_stream_never_switches(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    server = await rtsp_server({"/main": testsrc_h264(*MAIN, gop=30)})
    gw = await start_gateway(cameras=[{"name": "cam", "source": server.url("/main")}])
    assert gw.hub("cam").substream is None
    viewer = await whep_viewer(gw.base_url, "cam", decode=True, query="view=grid", stream=True)
    await wait_size(viewer, MAIN)
    await viewer.wait_stream_open()
    status = await viewer.wait_stream_status(lambda m: True)
    assert status["streams"] == ["main"] and status["current"] == "main"
    for message in ({"type": "pin", "pin": "sub"}, {"type": "view", "view": "full"}):
        viewer.send_stream(message)
    await viewer.wait_stream_status(lambda m: m["view"] == "full" and m["pin"] == "sub")
    count = len(viewer.frames)
    await viewer.wait_frames(count + 15, timeout=30)
    assert {(f.width, f.height) for f in viewer.frames} == {MAIN}
    assert gw.hub("cam").switches == {}
    assert [s["name"] for s in (await api_camera(gw))["streams"]] == ["main"]


async def test_a_sub_stream_that_goes_down_falls_back_and_returns(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    main_server = await rtsp_server({"/main": testsrc_h264(*MAIN, gop=30)})
    sub_server = await rtsp_server({"/sub": testsrc_h264(*SUB, gop=30)})
    gw = await start_gateway(
        cameras=[
            {
                "name": "cam",
                "source": main_server.url("/main"),
                "substream": sub_server.url("/sub"),
            }
        ]
    )
    viewer = await whep_viewer(gw.base_url, "cam", decode=True, query="view=grid", stream=True)
    await wait_size(viewer, SUB)
    await viewer.wait_stream_open()

    await sub_server.stop()
    await wait_size(viewer, MAIN, timeout=60)
    status = await viewer.wait_stream_status(lambda m: m["current"] == "main")
    assert status["reason"] == "unavailable" and status["view"] == "grid"

    await sub_server.start()  # the same port: the camera's sub stream is back
    back_at = await wait_size(viewer, SUB, timeout=60)
    await viewer.wait_frames(back_at + 15, timeout=30)
    status = await viewer.wait_stream_status(lambda m: m["current"] == "sub")
    assert gw.hub("cam").switches == {"unavailable": 1, "view": 1}
    assert_rtp_continuous(viewer)


async def test_bad_messages_on_the_stream_channel_are_ignored(
    rtsp_server: RtspServerFactory,
    start_gateway: GatewayFactory,
    whep_viewer: WhepViewerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="camgate.webrtc")
    _, gw = await two_stream_camera(rtsp_server, start_gateway)
    viewer = await whep_viewer(gw.base_url, "cam", decode=True, query="view=grid", stream=True)
    other = await whep_viewer(gw.base_url, "cam", query="view=grid")
    await wait_size(viewer, SUB)
    await viewer.wait_stream_open()
    bad: list[Any] = [
        "not json",
        b"\x00\xff binary",
        "[1, 2]",
        '{"type": "view", "view": "huge"}',
        '{"type": "pin", "pin": null}',
        '{"type": "reboot"}',
        '{"view": "full"}',
        "x" * 5000,
    ]
    for message in bad:
        viewer.send_stream(message)
    viewer.send_stream({"type": "pin", "pin": "sub"})  # a good one after them is served
    await viewer.wait_stream_status(lambda m: m["pin"] == "sub", timeout=30)
    count, others = len(viewer.frames), other.frames_received
    await viewer.wait_frames(count + 15, timeout=30)
    await other.wait_frames(others + 15, timeout=30)
    assert {(f.width, f.height) for f in viewer.frames} == {SUB}
    ignored = [r for r in caplog.records if "ignoring a message" in r.getMessage()]
    assert len(ignored) == len(bad)
    assert viewer.connection_state == "connected"


async def test_the_sub_streams_credentials_reach_no_api_or_log_line(
    rtsp_server: RtspServerFactory,
    start_gateway: GatewayFactory,
    whep_viewer: WhepViewerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="camgate")
    secret = "s3cret:sub@stream"
    mounts = {"/main": testsrc_h264(*MAIN, gop=30), "/sub": testsrc_h264(*SUB, gop=30)}
    server = await rtsp_server(mounts, user="viewer", password=secret)
    camera = {"name": "cam", "source": server.url("/main"), "substream": server.url("/sub")}
    gw = await start_gateway(cameras=[camera])
    viewer = await whep_viewer(gw.base_url, "cam", decode=True, query="view=grid")
    await wait_size(viewer, SUB)  # the sub stream signed in with them
    status = await api_camera(gw)
    assert gw.hub("cam").substream.description == f"rtsp://127.0.0.1:{server.port}/sub"
    seen = json.dumps(status) + caplog.text + repr(gw.gateway.config)
    for form in (secret, quote(secret, safe=""), quote(secret)):
        assert form not in seen


async def test_whep_refuses_an_unknown_view_or_pin(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory
) -> None:
    _, gw = await two_stream_camera(rtsp_server, start_gateway)
    url = f"{gw.base_url}/api/cameras/cam/whep"
    async with aiohttp.ClientSession() as http:
        for query in ("view=huge", "pin=both"):
            headers = {"Content-Type": "application/sdp"}
            async with http.post(f"{url}?{query}", data="v=0", headers=headers) as response:
                assert response.status == 400
                assert "must be" in (await response.json())["error"]


async def test_mqtt_state_lists_both_streams(
    rtsp_server: RtspServerFactory,
    start_gateway: GatewayFactory,
    mosquitto: MosquittoFactory,
    whep_viewer: WhepViewerFactory,
) -> None:
    broker = await mosquitto()
    server = await rtsp_server(
        {"/main": testsrc_h264(*MAIN, gop=30), "/sub": testsrc_h264(*SUB, gop=30)}
    )
    camera = {"name": "cam", "source": server.url("/main"), "substream": server.url("/sub")}
    mqtt = {"host": broker.host, "port": broker.port, "topic_prefix": "camgate"}
    gw = await start_gateway(cameras=[camera], mqtt=mqtt)
    async with MqttProbe(broker.host, broker.port) as probe:
        await probe.subscribe("camgate/#")
        await whep_viewer(gw.base_url, "cam", query="view=grid")

        def sub_live(m: Seen) -> bool:
            streams = json.loads(m.text).get("streams", []) if m.payload else []
            return len(streams) == 2 and streams[1]["fps"] > 0

        seen = await probe.wait("camgate/cam/state", sub_live, timeout=30)
    main, sub = json.loads(seen.text)["streams"]
    assert (sub["name"], sub["width"], sub["height"]) == ("sub", *SUB)
    assert sub["state"] == "live" and sub["bitrate_kbps"] > 0 and sub["profile"]
    assert main["name"] == "main" and "rtsp" not in seen.text


# --- ONVIF cameras --------------------------------------------------------------------


async def onvif_camera(
    rtsp_server: RtspServerFactory,
    start_gateway: GatewayFactory,
    profiles: tuple[Profile, ...],
    **onvif: Any,
) -> tuple[OnvifTestDevice, RunningGateway]:
    server = await rtsp_server(
        {f"/{p.token}": testsrc_h264(p.width, p.height, gop=30) for p in profiles}
    )
    device = OnvifTestDevice(
        rtsp_url=f"rtsp://127.0.0.1:{server.port}/{{profile}}", profiles=profiles
    )
    await device.start()
    _devices.append(device)
    block = {
        "host": device.host,
        "port": device.port,
        "username": device.username,
        "password": device.password,
        **onvif,
    }
    return device, await start_gateway(cameras=[{"name": "cam", "onvif": block}])


_devices: list[OnvifTestDevice] = []


@pytest.fixture(autouse=True)
async def _stop_devices() -> AsyncIterator[None]:
    yield
    while _devices:
        device = _devices.pop()
        await device.stop()
        assert device.errors == []  # no reply of the device failed its schema


@onvif_needed
async def test_an_onvif_camera_finds_its_sub_stream_by_itself(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    profiles = (
        Profile("Main", *MAIN, ptz=False),
        Profile("Middle", 480, 270, ptz=False),
        Profile("Low", *SUB, ptz=False),
    )
    device, gw = await onvif_camera(rtsp_server, start_gateway, profiles)
    viewer = await whep_viewer(gw.base_url, "cam", decode=True, query="view=grid", stream=True)
    await wait_size(viewer, SUB)
    asked = {r.args["ProfileToken"] for r in device.requests_of("GetStreamUri")}
    assert asked == {"Low"}  # the lowest-resolution one; the main stream was not needed
    await viewer.wait_stream_open()
    viewer.send_stream({"type": "view", "view": "full"})
    await wait_size(viewer, MAIN)
    streams = (await api_camera(gw))["streams"]
    assert [(s["name"], s["width"]) for s in streams] == [("main", MAIN[0]), ("sub", SUB[0])]


@onvif_needed
async def test_an_onvif_camera_with_one_profile_has_no_sub_stream(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    _, gw = await onvif_camera(rtsp_server, start_gateway, (Profile("Main", *MAIN),))
    sub = gw.hub("cam").substream
    assert sub is not None  # `substream: auto`: it is looked for when a viewer needs it
    viewer = await whep_viewer(gw.base_url, "cam", decode=True, query="view=grid", stream=True)
    await wait_size(viewer, MAIN)
    await viewer.wait_stream_open()
    status = await viewer.wait_stream_status(lambda m: m["streams"] == ["main"])
    assert status["current"] == "main" and status["reason"] == "unavailable"
    assert gw.hub("cam").switches == {"unavailable": 1}
    assert sub.error == "the camera offers no second H.264 stream"
    assert [s["name"] for s in (await api_camera(gw))["streams"]] == ["main"]
    await wait_until(lambda: not sub.running, timeout=30)  # nobody waits for it any more


@onvif_needed
async def test_an_onvif_camera_with_substream_off_has_none(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory
) -> None:
    profiles = (Profile("Main", *MAIN), Profile("Low", *SUB, ptz=False))
    _, gw = await onvif_camera(rtsp_server, start_gateway, profiles, substream="off")
    assert gw.hub("cam").substream is None


async def api_camera(gw: RunningGateway) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{gw.base_url}/api/cameras/cam") as response,
    ):
        assert response.status == 200
        return await response.json()

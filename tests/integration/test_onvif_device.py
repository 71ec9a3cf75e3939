"""The ONVIF test device against the real onvif-zeep-async client (and raw SOAP for strictness).

Runs in the per-test network namespace of tests/conftest.py (`netns`, autouse).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

_root = logging.getLogger()
_saved = (_root.level, list(_root.handlers))
onvif = pytest.importorskip("onvif", reason="onvif-zeep-async is not installed")
_root.setLevel(_saved[0])  # importing onvif calls logging.basicConfig(level=INFO)
_root.handlers[:] = _saved[1]
zeep_exceptions = pytest.importorskip("zeep.exceptions")

from onvif.util import is_auth_error  # noqa: E402

from tests.conftest import RtspServerFactory  # noqa: E402
from tests.rig.netns import NetNamespace  # noqa: E402
from tests.rig.onvif_device import (  # noqa: E402
    DEVICE_PATH,
    NS,
    PTZ_PATH,
    OnvifTestDevice,
    Profile,
    SoapFault,
    wsdl_dir,
)
from tests.rig.streams import testsrc_h264  # noqa: E402
from tests.rig.wsdiscovery_responder import (  # noqa: E402
    WsDiscoveryResponder,
    enable_loopback_multicast,
    probe,
)

Fault = zeep_exceptions.Fault
RTSP = "rtsp://127.0.0.1:8554/{profile}"
PTZ_NS = "http://www.onvif.org/ver20/ptz/wsdl"
MEDIA_NS = "http://www.onvif.org/ver10/media/wsdl"


def camera(device: OnvifTestDevice, password: str = "secret", **kwargs: Any) -> Any:
    return onvif.ONVIFCamera(
        device.host,
        device.port,
        "admin",
        password,
        wsdl_dir=str(wsdl_dir()),
        no_cache=True,
        **kwargs,
    )


@pytest.fixture
async def device(netns: NetNamespace | None) -> AsyncIterator[OnvifTestDevice]:
    dev = OnvifTestDevice(rtsp_url=RTSP, pan_tilt_velocity=(-0.5, 0.5))
    await dev.start()
    yield dev
    await dev.stop()
    assert dev.errors == []  # no reply of the device failed the schema


@pytest.fixture
async def cam(device: OnvifTestDevice) -> AsyncIterator[Any]:
    client = camera(device)
    await client.update_xaddrs()
    yield client
    await client.close()


def subcodes(fault: Any) -> list[str]:
    return [q.localname for q in fault.subcodes]


async def test_update_xaddrs_uses_get_services(device: OnvifTestDevice, cam: Any) -> None:
    assert cam.xaddrs[PTZ_NS] == device.url(PTZ_PATH)
    assert cam.xaddrs[MEDIA_NS] == device.url("/onvif/media_service")
    assert [r.operation for r in device.requests] == ["GetServices"]
    assert device.requests[0].args == {"IncludeCapability": "false"}
    capabilities = await cam.get_capabilities()  # GetCapabilities, lazily
    assert capabilities["PTZ"]["XAddr"] == device.url(PTZ_PATH)
    assert capabilities["Events"] is None


async def test_capabilities_fallback(device: OnvifTestDevice) -> None:
    device.fail_next("GetServices", SoapFault.receiver("ActionNotSupported"))
    client = camera(device)
    try:
        await client.update_xaddrs()
        assert client.xaddrs[PTZ_NS] == device.url(PTZ_PATH)
        assert [r.operation for r in device.requests] == ["GetCapabilities"]
        assert device.faults[0].operation == "GetServices"
    finally:
        await client.close()


async def test_device_information_and_time(device: OnvifTestDevice, cam: Any) -> None:
    mgmt = await cam.create_devicemgmt_service()
    info = await mgmt.GetDeviceInformation()
    assert (info.Manufacturer, info.Model, info.SerialNumber) == ("camgate", "TestPTZ", "CG-0001")
    clock = await mgmt.authless_GetSystemDateAndTime()  # no WS-Security header at all
    assert abs(clock.UTCDateTime.Date.Year - dt.datetime.now(dt.UTC).year) <= 1
    services = await mgmt.GetServices({"IncludeCapability": True})
    assert [s.Namespace for s in services][-1] == PTZ_NS
    interfaces = await mgmt.GetNetworkInterfaces()
    assert interfaces[0].Info.HwAddress == "02:00:00:c0:ff:ee"


async def test_profiles_stream_and_snapshot_uri(device: OnvifTestDevice, cam: Any) -> None:
    media = await cam.create_media_service()
    profiles = await media.GetProfiles()
    assert [p.token for p in profiles] == ["MainStream", "SubStream"]
    main, sub = profiles
    resolution = main.VideoEncoderConfiguration.Resolution
    assert (resolution.Width, resolution.Height) == (1920, 1080)
    assert main.VideoEncoderConfiguration.Encoding == "H264"
    assert main.PTZConfiguration.token == "PTZConfig_1"
    assert sub.PTZConfiguration is None
    for token in ("MainStream", "SubStream"):
        setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
        uri = await media.GetStreamUri({"StreamSetup": setup, "ProfileToken": token})
        assert uri.Uri == f"rtsp://127.0.0.1:8554/{token}"
    assert await cam.get_snapshot_uri("MainStream") == device.url(
        "/onvif/snapshot?profile=MainStream"
    )
    assert (await cam.get_snapshot("MainStream"))[:2] == b"\xff\xd8"


async def test_ptz_node_and_configuration_ranges(device: OnvifTestDevice, cam: Any) -> None:
    ptz = await cam.create_ptz_service()
    options = await ptz.GetConfigurationOptions({"ConfigurationToken": "PTZConfig_1"})
    velocity = options.Spaces.ContinuousPanTiltVelocitySpace[0]
    assert (velocity.XRange.Min, velocity.XRange.Max) == (-0.5, 0.5)
    assert options.Spaces.ContinuousZoomVelocitySpace[0].XRange.Max == 1.0
    nodes = await ptz.GetNodes()
    assert nodes[0].HomeSupported is True and nodes[0].MaximumNumberOfPresets == 16
    node = await ptz.GetNode({"NodeToken": nodes[0].token})
    assert node.SupportedPTZSpaces.PanTiltSpeedSpace[0].XRange.Max == 1.0
    config = await ptz.GetConfiguration({"PTZConfigurationToken": "PTZConfig_1"})
    assert config.DefaultPTZTimeout == dt.timedelta(seconds=10)
    with pytest.raises(Fault) as caught:
        await ptz.GetNode({"NodeToken": "nope"})
    assert subcodes(caught.value) == ["InvalidArgVal", "NoEntity"]


async def test_continuous_move_then_stop(device: OnvifTestDevice, cam: Any) -> None:
    ptz = await cam.create_ptz_service()
    velocity = {"PanTilt": {"x": 0.5, "y": -0.25}, "Zoom": {"x": 0.5}}
    await ptz.ContinuousMove({"ProfileToken": "MainStream", "Velocity": velocity})
    move = await device.wait_for("ContinuousMove")
    assert move.args["Velocity"] == {"PanTilt": {"x": 0.5, "y": -0.25}, "Zoom": {"x": 0.5}}
    await asyncio.sleep(0.3)
    status = await ptz.GetStatus({"ProfileToken": "MainStream"})
    assert status.MoveStatus.PanTilt == "MOVING" and device.moving
    await ptz.Stop({"ProfileToken": "MainStream"})
    stop = await device.wait_for("Stop", timeout=5)
    assert stop.time - move.time >= 0.3
    pan, tilt, zoom = device.position
    moved = stop.time - move.time  # 0.5 is the range's end: full speed, 1 unit/s
    assert (pan, tilt, zoom) == pytest.approx(
        (min(moved, 1.0), max(-moved / 2, -1.0), min(moved / 2, 1.0)), abs=0.02
    )
    await asyncio.sleep(0.2)
    assert device.position == (pan, tilt, zoom) and not device.moving
    status = await ptz.GetStatus({"ProfileToken": "MainStream"})
    assert (status.MoveStatus.PanTilt, status.MoveStatus.Zoom) == ("IDLE", "IDLE")
    assert status.Position.PanTilt.x == pytest.approx(pan)


async def test_continuous_move_timeout_and_partial_stop(device: OnvifTestDevice, cam: Any) -> None:
    ptz = await cam.create_ptz_service()
    velocity = {"PanTilt": {"x": -0.5, "y": 0}, "Zoom": {"x": 1}}
    timeout = dt.timedelta(seconds=1)
    await ptz.ContinuousMove(
        {"ProfileToken": "MainStream", "Velocity": velocity, "Timeout": timeout}
    )
    assert (await device.wait_for("ContinuousMove")).args["Timeout"] == "PT1S"
    await ptz.Stop({"ProfileToken": "MainStream", "PanTilt": False, "Zoom": True})
    assert device.moving  # pan/tilt still moves
    await asyncio.sleep(1.2)
    assert not device.moving
    assert device.position[0] == pytest.approx(-1.0, abs=0.05)  # clamped at the end stop


async def test_out_of_range_velocity_is_a_fault(device: OnvifTestDevice, cam: Any) -> None:
    ptz = await cam.create_ptz_service()
    with pytest.raises(Fault) as caught:
        velocity = {"PanTilt": {"x": 0.8, "y": 0}}
        await ptz.ContinuousMove({"ProfileToken": "MainStream", "Velocity": velocity})
    assert caught.value.code == "env:Sender"
    assert subcodes(caught.value) == ["InvalidArgVal", "InvalidVelocity"]
    assert device.faults[-1].operation == "ContinuousMove"
    assert device.requests_of("ContinuousMove") == [] and not device.moving
    with pytest.raises(Fault) as caught:
        await ptz.ContinuousMove(
            {"ProfileToken": "MainStream", "Velocity": {"Zoom": {"x": 0.1}}, "Timeout": "PT0.1S"}
        )
    assert subcodes(caught.value) == ["InvalidArgVal", "TimeoutNotSupported"]
    with pytest.raises(Fault) as caught:
        await ptz.ContinuousMove({"ProfileToken": "SubStream", "Velocity": {"Zoom": {"x": 0.1}}})
    assert subcodes(caught.value) == ["InvalidArgVal", "NoPTZProfile"]
    with pytest.raises(Fault) as caught:
        await ptz.GetStatus({"ProfileToken": "Nope"})
    assert subcodes(caught.value) == ["InvalidArgVal", "NoProfile"]


async def test_absolute_relative_and_home(device: OnvifTestDevice, cam: Any) -> None:
    ptz = await cam.create_ptz_service()
    position = {"PanTilt": {"x": 0.5, "y": 0.25}, "Zoom": {"x": 0.5}}
    await ptz.AbsoluteMove({"ProfileToken": "MainStream", "Position": position})
    assert device.position == (0.5, 0.25, 0.5)
    await ptz.SetHomePosition({"ProfileToken": "MainStream"})
    translation = {"PanTilt": {"x": 0.75, "y": -0.5}}
    await ptz.RelativeMove({"ProfileToken": "MainStream", "Translation": translation})
    assert device.position == (1.0, -0.25, 0.5)  # pan clamped
    await ptz.GotoHomePosition({"ProfileToken": "MainStream"})
    assert device.position == (0.5, 0.25, 0.5)
    with pytest.raises(Fault) as caught:
        position = {"Zoom": {"x": 1.5}}
        await ptz.AbsoluteMove({"ProfileToken": "MainStream", "Position": position})
    assert subcodes(caught.value) == ["InvalidArgVal", "InvalidPosition"]
    with pytest.raises(Fault) as caught:
        speed = {"PanTilt": {"x": 2, "y": 0}}
        await ptz.GotoHomePosition({"ProfileToken": "MainStream", "Speed": speed})
    assert subcodes(caught.value) == ["InvalidArgVal", "InvalidSpeed"]


async def test_presets_round_trip(device: OnvifTestDevice, cam: Any) -> None:
    ptz = await cam.create_ptz_service()
    position = {"PanTilt": {"x": -0.5, "y": 0.5}, "Zoom": {"x": 0.25}}
    await ptz.AbsoluteMove({"ProfileToken": "MainStream", "Position": position})
    token = await ptz.SetPreset({"ProfileToken": "MainStream", "PresetName": "door"})
    assert device.presets[token].name == "door"
    presets = await ptz.GetPresets({"ProfileToken": "MainStream"})
    assert [(p.token, p.Name, p.PTZPosition.PanTilt.x) for p in presets] == [(token, "door", -0.5)]
    with pytest.raises(Fault) as caught:
        await ptz.SetPreset({"ProfileToken": "MainStream", "PresetName": "door"})
    assert subcodes(caught.value) == ["InvalidArgVal", "PresetExist"]
    await ptz.GotoHomePosition({"ProfileToken": "MainStream"})
    assert device.position == (0.0, 0.0, 0.0)
    await ptz.GotoPreset({"ProfileToken": "MainStream", "PresetToken": token})
    assert device.position == (-0.5, 0.5, 0.25)
    await ptz.RemovePreset({"ProfileToken": "MainStream", "PresetToken": token})
    assert await ptz.GetPresets({"ProfileToken": "MainStream"}) == []
    with pytest.raises(Fault) as caught:
        await ptz.GotoPreset({"ProfileToken": "MainStream", "PresetToken": token})
    assert subcodes(caught.value) == ["InvalidArgVal", "NoToken"]


@pytest.mark.parametrize(
    "credentials", [{"password": "wrong"}, {"encrypt": False}], ids=["wrong", "PasswordText"]
)
async def test_bad_credentials_are_a_not_authorized_fault(
    device: OnvifTestDevice, credentials: dict[str, Any]
) -> None:
    client = camera(device, **credentials)
    try:
        with pytest.raises(Fault) as caught:
            await client.update_xaddrs()  # GetServices fails, GetCapabilities raises
        assert is_auth_error(caught.value)
        assert subcodes(caught.value) == ["NotAuthorized"]
        assert [f.operation for f in device.faults] == ["GetServices", "GetCapabilities"]
        assert device.requests == []
    finally:
        await client.close()


async def test_pre_auth_discovery_then_auth_failure(netns: NetNamespace | None) -> None:
    pre_auth = ("GetSystemDateAndTime", "GetServices", "GetCapabilities")
    async with OnvifTestDevice(unauthenticated=pre_auth) as device:
        client = camera(device, password="wrong")
        try:
            await client.update_xaddrs()  # succeeds: the wrong password shows up later
            media = await client.create_media_service()
            with pytest.raises(Fault) as caught:
                await media.GetProfiles()
            assert is_auth_error(caught.value)
        finally:
            await client.close()


async def test_preset_edge_cases(netns: NetNamespace | None) -> None:
    async with OnvifTestDevice(max_presets=1) as device:
        client = camera(device)
        try:
            await client.update_xaddrs()
            ptz = await client.create_ptz_service()
            main = {"ProfileToken": "MainStream"}
            velocity = {"PanTilt": {"x": 0.1, "y": 0}}
            await ptz.ContinuousMove({**main, "Velocity": velocity})
            with pytest.raises(Fault) as caught:
                await ptz.SetPreset({**main, "PresetName": "a"})
            assert subcodes(caught.value) == ["Action", "MovingPTZ"]
            await ptz.Stop(main)
            token = await ptz.SetPreset({**main, "PresetName": "a"})
            with pytest.raises(Fault) as caught:
                await ptz.SetPreset({**main, "PresetName": "b"})
            assert subcodes(caught.value) == ["Action", "TooManyPresets"]
            assert await ptz.SetPreset({**main, "PresetToken": token, "PresetName": "b"}) == token
            assert device.presets[token].name == "b"
            with pytest.raises(TimeoutError):
                await device.wait_for("GotoPreset", timeout=0.2)
        finally:
            await client.close()


async def test_device_clock_offset_needs_adjust_time(device: OnvifTestDevice) -> None:
    device.clock_offset = 3600.0
    plain, adjusted = camera(device), camera(device, adjust_time=True)
    try:
        with pytest.raises(Fault):
            await plain.update_xaddrs()
        await adjusted.update_xaddrs()
        assert adjusted.dt_diff.total_seconds() == pytest.approx(3600, abs=2)
        assert [r.operation for r in device.requests] == ["GetSystemDateAndTime", "GetServices"]
    finally:
        await plain.close()
        await adjusted.close()


async def test_delay_makes_the_client_time_out(device: OnvifTestDevice, cam: Any) -> None:
    media = await cam.create_onvif_service("media", read_timeout=1)
    device.delay = 3.0
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await media.GetProfiles()  # the library's own read timeout: a builtin TimeoutError
    assert 0.9 < time.monotonic() - started < 2.5
    ptz = await cam.create_ptz_service()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):  # what camgate should do around every call
            await ptz.GetStatus({"ProfileToken": "MainStream"})
    device.delay = 0.0
    assert (await device.wait_for("GetProfiles", timeout=5)).operation == "GetProfiles"


async def test_fail_next_and_reboot(device: OnvifTestDevice, cam: Any) -> None:
    ptz = await cam.create_ptz_service()
    device.fail_next("GetStatus", SoapFault.receiver("Action", reason="motor jammed"))
    with pytest.raises(Fault) as caught:
        await ptz.GetStatus({"ProfileToken": "MainStream"})
    assert caught.value.message == "motor jammed" and caught.value.code == "env:Receiver"
    await ptz.GetStatus({"ProfileToken": "MainStream"})
    velocity = {"PanTilt": {"x": 0.5, "y": 0}}
    await ptz.ContinuousMove({"ProfileToken": "MainStream", "Velocity": velocity})
    port = device.port
    await device.reboot(downtime=0.2)
    assert device.port == port and not device.moving
    status = await ptz.GetStatus({"ProfileToken": "MainStream"})  # same client, new connection
    assert status.MoveStatus.PanTilt == "IDLE"


async def test_without_ptz(netns: NetNamespace | None) -> None:
    profiles = [Profile("MainStream", 1920, 1080), Profile("SubStream", 640, 360)]
    async with OnvifTestDevice(ptz=False, profiles=profiles) as device:
        client = camera(device)
        try:
            await client.update_xaddrs()
            with pytest.raises(onvif.ONVIFError):
                await client.create_ptz_service()
            media = await client.create_media_service()
            assert all(p.PTZConfiguration is None for p in await media.GetProfiles())
            caps = await client.get_capabilities()
            assert caps["PTZ"] is None
        finally:
            await client.close()
        async with (
            aiohttp.ClientSession() as http,
            http.post(device.url(PTZ_PATH), data=b"") as response,
        ):
            assert response.status == 404


def first_video_codec(url: str) -> str:
    """Open `url` with FFmpeg (PyAV) and return the codec of the first video packet."""
    import av

    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=15) as container:
        for packet in container.demux(video=0):
            if packet.size:
                return packet.stream.codec_context.name
    return ""


@pytest.mark.rtsp
async def test_stream_uri_plays_from_the_rtsp_camera(rtsp_server: RtspServerFactory) -> None:
    pytest.importorskip("av")
    mounts = {"/MainStream": testsrc_h264(1280, 720), "/SubStream": testsrc_h264()}
    server = await rtsp_server(mounts, user="cam", password="pw")
    rtsp_url = server.url("/", with_credentials=False) + "{profile}"
    async with OnvifTestDevice(rtsp_url=rtsp_url) as device:
        client = camera(device)
        try:
            await client.update_xaddrs()
            media = await client.create_media_service()
            setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
            uri = (
                await media.GetStreamUri({"StreamSetup": setup, "ProfileToken": "SubStream"})
            ).Uri
        finally:
            await client.close()
    assert uri == server.url("/SubStream", with_credentials=False)  # no credentials in it
    with_credentials = uri.replace("rtsp://", "rtsp://cam:pw@", 1)
    assert await asyncio.to_thread(first_video_codec, with_credentials) == "h264"


# ---- raw SOAP: what the device refuses ------------------------------------------------


def wsse(username: str = "admin", password: str = "secret") -> str:
    nonce = os.urandom(16)
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest())
    return (
        f'<wsse:Security xmlns:wsse="{NS["wsse"]}" xmlns:wsu="{NS["wsu"]}"><wsse:UsernameToken>'
        f"<wsse:Username>{username}</wsse:Username>"
        '<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/'
        f'oasis-200401-wss-username-token-profile-1.0#PasswordDigest">{digest.decode()}'
        f"</wsse:Password><wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce>"
        f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>"
    )


def soap(body: str, header: str = "", env: str = NS["env"]) -> bytes:
    return (
        f'<env:Envelope xmlns:env="{env}" xmlns:tds="{NS["tds"]}" xmlns:tptz="{NS["tptz"]}" '
        f'xmlns:tt="{NS["tt"]}"><env:Header>{header}</env:Header>'
        f"<env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


async def post(
    device: OnvifTestDevice, path: str, data: bytes, content_type: str = "application/soap+xml"
) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        headers = {"Content-Type": f"{content_type}; charset=utf-8"}
        async with http.post(device.url(path), data=data, headers=headers) as response:
            return response.status, await response.text()


@pytest.mark.parametrize(
    ("path", "data", "status", "expected"),
    [
        (DEVICE_PATH, b"<env:Envelope", 400, "ter:WellFormed"),
        (DEVICE_PATH, soap("<tds:GetDeviceInformation/>"), 400, "ter:NotAuthorized"),
        (DEVICE_PATH, soap("<tds:GetDeviceInformation/>", "BADWSSE"), 400, "ter:NotAuthorized"),
        (DEVICE_PATH, soap("<tds:GetSystemDateAndTime/>"), 200, "tt:UTCDateTime"),
        (
            DEVICE_PATH,
            soap("<tds:GetSystemDateAndTime/>", env="http://schemas.xmlsoap.org/soap/envelope/"),
            500,
            "env:VersionMismatch",
        ),
        (DEVICE_PATH, soap("<tds:Reboot/>", "WSSE"), 500, "ter:ActionNotSupported"),
        (DEVICE_PATH, soap("<tptz:GetNodes/>", "WSSE"), 400, "ter:TagMismatch"),
        (PTZ_PATH, soap("<tptz:Stop/>", "WSSE"), 400, "ter:InvalidArgs"),
        (
            PTZ_PATH,
            soap(
                "<tptz:ContinuousMove><tptz:ProfileToken>MainStream</tptz:ProfileToken>"
                '<tptz:Velocity><tt:PanTilt x="fast" y="0"/></tptz:Velocity></tptz:ContinuousMove>',
                "WSSE",
            ),
            400,
            "ter:InvalidArgVal",
        ),
        (
            PTZ_PATH,
            soap(
                "<tptz:ContinuousMove><tptz:ProfileToken>MainStream</tptz:ProfileToken>"
                '<tptz:Velocity><tt:PanTilt x="0.1" y="0" space="urn:x"/></tptz:Velocity>'
                "</tptz:ContinuousMove>",
                "WSSE",
            ),
            400,
            "ter:SpaceNotSupported",
        ),
        (
            DEVICE_PATH,
            soap("<tds:GetSystemDateAndTime/>", '<x:Y xmlns:x="urn:x" env:mustUnderstand="true"/>'),
            500,
            "env:MustUnderstand",
        ),
    ],
)
async def test_strict_soap(
    device: OnvifTestDevice, path: str, data: bytes, status: int, expected: str
) -> None:
    data = data.replace(b"BADWSSE", wsse(password="x").encode())
    data = data.replace(b"WSSE", wsse().encode())
    got_status, text = await post(device, path, data)
    assert (got_status, expected in text) == (status, True), text


async def test_soap11_content_type_and_replay(device: OnvifTestDevice) -> None:
    status, _ = await post(device, DEVICE_PATH, soap("<tds:GetSystemDateAndTime/>"), "text/xml")
    assert status == 415
    header = wsse()
    body = soap("<tds:GetDeviceInformation/>", header)
    assert (await post(device, DEVICE_PATH, body))[0] == 200
    status, text = await post(device, DEVICE_PATH, body)  # same nonce again
    assert status == 400 and "nonce replayed" in text
    assert [f.subcodes for f in device.faults][-1] == ("NotAuthorized",)


# ---- WS-Discovery ---------------------------------------------------------------------


async def test_ws_discovery_probe_match(
    device: OnvifTestDevice, netns: NetNamespace | None
) -> None:
    if netns is None:
        pytest.skip("WS-Discovery multicast only runs inside a test network namespace")
    enable_loopback_multicast()
    async with WsDiscoveryResponder(device.xaddr, name="Front door", model="TestPTZ") as responder:
        matches = await probe(timeout=0.5)
        assert len(matches) == 1
        match = matches[0]
        assert match.xaddrs == (device.xaddr,)
        assert "onvif://www.onvif.org/name/Front%20door" in match.scopes
        assert "onvif://www.onvif.org/hardware/TestPTZ" in match.scopes
        assert match.address == responder.endpoint
        assert await probe(timeout=0.3, scopes="onvif://www.onvif.org/hardware/TestPTZ")
        assert not await probe(timeout=0.3, scopes="onvif://www.onvif.org/hardware/Other")
        assert not await probe(timeout=0.3, types="tds:Nope")
    client = camera(device)  # the discovered XAddr works with the client
    try:
        await client.update_xaddrs()
        assert client.xaddrs[PTZ_NS] == device.url(PTZ_PATH)
    finally:
        await client.close()

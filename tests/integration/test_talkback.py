"""Talk back end to end: an aiortc "browser" sends a 1 kHz tone on its audio m-line and
asks for the floor on the "talk" data channel; camgate sends it to GStreamer's ONVIF
camera over its backchannel, where the test listens to what arrived."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from gateway.auth.roles import Role
from tests.integration.conftest import GatewayFactory, RunningGateway
from tests.rig.backchannel import (
    BackchannelCamera,
    CameraFactory,
    dominant_frequency,
    loud_samples,
    write_tone_wav,
)
from tests.rig.talker import Talker
from tests.rig.wait import wait_until

pytestmark = pytest.mark.rtsp
ADMIN_PASSWORD = "correct horse battery"


@pytest.fixture
def tone(tmp_path: Path) -> Path:
    return write_tone_wav(tmp_path / "tone.wav", seconds=60)


async def gateway_for(
    start_gateway: GatewayFactory, camera: BackchannelCamera, **settings: object
) -> RunningGateway:
    gw = await start_gateway(cameras=[{"name": "cam", "source": camera.url("/cam")}], **settings)
    return gw


async def talker(gw: RunningGateway, voice: Path, **kwargs: object) -> Talker:
    peer = Talker(gw.base_url, "cam", voice, **kwargs)  # type: ignore[arg-type]
    await peer.start()
    await peer.wait_connected(timeout=30)
    return peer


async def test_the_admins_voice_reaches_the_camera(
    start_gateway: GatewayFactory, cameras: CameraFactory, tone: Path
) -> None:
    camera = await cameras(codec="pcmu")
    gw = await gateway_for(start_gateway, camera)
    assert (await _camera_json(gw))["talk"] is False  # not asked yet: no extra connection
    speaker = await talker(gw, tone)
    try:
        assert await asyncio.wait_for(speaker.hello, 30) == {"talk": "ready", "codec": "PCMU"}
        cam = await _camera_json(gw)
        assert cam["talk"] is True and cam["talk_codec"] == "PCMU"
        await asyncio.sleep(0.5)  # audio flows before the button is held: nothing is sent
        assert camera.heard().size == 0 and camera.backchannel_setups() == 0
        assert await speaker.talk("start") == {"talk": "granted", "codec": "PCMU"}
        try:
            await wait_until(lambda: loud_samples(camera.heard()) >= 2 * camera.rate, timeout=30)
        except TimeoutError:
            talk = gw.gateway.talks["cam"]
            sent = talk._session.packets_sent if talk._session else None
            raise AssertionError(
                f"heard {camera.heard().size} samples, {loud_samples(camera.heard())} loud; "
                f"sent {sent} packets; speaker {talk.speaker}"
            ) from None
        assert await speaker.talk("stop") == {"talk": "ended"}
        await wait_until(lambda: camera.count("teardown") >= 1, timeout=30)
        heard = camera.heard()
        assert abs(dominant_frequency(heard, camera.rate) - 1000) < 30
        # it talked from "granted" to "stop" (a little over 2 s here), not the whole file
        assert 2 * camera.rate <= loud_samples(heard) <= 8 * camera.rate
        assert speaker.frames_received >= 0  # the video session is untouched throughout
    finally:
        await speaker.close()


async def test_floor_busy_release_on_leave_and_refused_setup(
    start_gateway: GatewayFactory, cameras: CameraFactory, tone: Path
) -> None:
    camera = await cameras(codec="pcma")
    gw = await gateway_for(start_gateway, camera)
    first, second = await talker(gw, tone), await talker(gw, tone)
    try:
        assert (await first.talk("start"))["talk"] == "granted"
        busy = await second.talk("start")
        assert busy["talk"] == "busy"
        await first.close()  # leaves mid-talk: the floor is free
        await wait_until(lambda: gw.gateway.talks["cam"].speaker is None, timeout=20)
        assert (await second.talk("start"))["talk"] == "granted"
        await wait_until(lambda: loud_samples(camera.heard()) >= camera.rate, timeout=30)
    finally:
        await first.close()
        await second.close()


async def test_refused_backchannel_setup_is_an_error_and_video_plays_on(
    start_gateway: GatewayFactory, cameras: CameraFactory, tone: Path
) -> None:
    camera = await cameras(refuse_setup=True)
    gw = await gateway_for(start_gateway, camera)
    speaker = await talker(gw, tone)
    try:
        reply = await speaker.talk("start")
        assert reply["talk"] == "error"
        assert "refused the backchannel SETUP: 403" in reply["message"]
        before = speaker.frames_received
        await speaker.wait_frames(before + 10, timeout=30)
    finally:
        await speaker.close()


async def test_camera_without_backchannel_is_unsupported(
    start_gateway: GatewayFactory, cameras: CameraFactory, tone: Path
) -> None:
    camera = await cameras(codec="none")
    gw = await gateway_for(start_gateway, camera)
    speaker = await talker(gw, tone)
    try:
        hello = await asyncio.wait_for(speaker.hello, 30)
        assert hello["talk"] == "unsupported" and "no audio backchannel" in hello["message"]
        assert (await _camera_json(gw))["talk"] is False
        reply = await speaker.talk("start")
        assert reply["talk"] == "unsupported" and "no audio backchannel" in reply["message"]
    finally:
        await speaker.close()


async def test_a_viewer_role_account_may_not_talk(
    start_gateway: GatewayFactory, cameras: CameraFactory, tone: Path
) -> None:
    camera = await cameras()
    gw = await gateway_for(start_gateway, camera, auth={"admin_password": ADMIN_PASSWORD})
    assert gw.gateway.auth is not None
    token = gw.gateway.auth.store.create_token("family", Role.VIEWER)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        speaker = await talker(gw, tone, http=http)
        try:
            assert (await asyncio.wait_for(speaker.hello, 30))["talk"] == "not allowed"
            reply = await speaker.talk("start")
            assert reply["talk"] == "not allowed"
            await asyncio.sleep(1.0)
            assert camera.heard().size == 0 and camera.backchannel_setups() == 0
        finally:
            await speaker.close()


async def _camera_json(gw: RunningGateway) -> dict[str, object]:
    url = f"{gw.base_url}/api/cameras/cam"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return await response.json()


async def test_an_onvif_camera_talks_at_its_stream_uri(
    start_gateway: GatewayFactory, cameras: CameraFactory, tone: Path
) -> None:
    """An `onvif:` camera: camgate asks GetStreamUri for the RTSP URL, adds the ONVIF
    credentials, and talks there."""
    pytest.importorskip("onvif")
    from tests.rig.onvif_device import OnvifTestDevice

    user, password = "admin", "pa ss:w@rd/#?%1"
    camera = await cameras(codec="pcma", user=user, password=password)
    device = OnvifTestDevice(
        username=user, password=password, rtsp_url=camera.url("/cam", with_credentials=False)
    )
    await device.start()
    try:
        onvif = {"host": device.host, "port": device.port, "username": user, "password": password}
        gw = await start_gateway(cameras=[{"name": "cam", "onvif": onvif}])
        speaker = await talker(gw, tone)
        try:
            assert await asyncio.wait_for(speaker.hello, 30) == {"talk": "ready", "codec": "PCMA"}
            assert (await speaker.talk("start"))["talk"] == "granted"
            await wait_until(lambda: loud_samples(camera.heard()) >= camera.rate, timeout=30)
        finally:
            await speaker.close()
    finally:
        await device.stop()
    assert device.errors == []


async def test_the_talk_time_limit_ends_the_turn_unasked(
    start_gateway: GatewayFactory, cameras: CameraFactory, tone: Path
) -> None:
    camera = await cameras()
    gw = await gateway_for(start_gateway, camera)
    gw.gateway.talks["cam"].max_talk_s = 1.0  # 60 s in the product
    speaker = await talker(gw, tone)
    try:
        assert (await speaker.talk("start"))["talk"] == "granted"
        ended = await asyncio.wait_for(speaker.talk_replies.get(), 30)
        assert ended == {"talk": "ended", "message": "talk time is limited to 1 s"}
        await wait_until(lambda: camera.count("teardown") >= 1, timeout=30)
        assert (await speaker.talk("start"))["talk"] == "granted"  # press again: a new turn
    finally:
        await speaker.close()

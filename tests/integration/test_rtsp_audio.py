"""A camera's sound through the RTSP client and the hub: GStreamer RTSP servers with a
sine tone in each codec cameras send (TCP and UDP), scripted cameras for what GStreamer
can't do (G.726, a refused audio SETUP, hostile audio RTP)."""

from __future__ import annotations

import asyncio
import itertools
import statistics
from collections.abc import AsyncIterator, Callable
from typing import Literal

import pytest

from gateway.hub import CameraHub
from gateway.media.accessunit import AccessUnit
from gateway.media.audio import AudioPacket
from gateway.sources import rtsp as rtsp_module
from gateway.sources.rtsp import RtspSource
from gateway.subscription import SubscriptionClosed
from tests.conftest import RtspServerFactory
from tests.integration.conftest import GatewayFactory
from tests.rig.audio_camera import AAC_SDP, AUDIO_CHANNEL, G726_SDP, PCMA_SDP, AudioCamera
from tests.rig.audio_streams import testsrc_with_audio
from tests.rig.onvif_device import OnvifTestDevice, Profile
from tests.rig.wait import wait_until

Transport = Literal["tcp", "udp"]
WAIT = 30.0  # generous: a loaded 2-core machine is slow; nothing here sleeps blindly
# RTP timestamp step of one packet in each codec as the rig sends it
FRAME = {"PCMA": 160, "PCMU": 160, "OPUS": 960, "AAC": 1024, "LATM": 1024}
RATE = {"PCMA": 8000, "PCMU": 8000, "OPUS": 48000, "AAC": 16000}
CHANNELS = {"PCMA": 1, "PCMU": 1, "OPUS": 2, "AAC": 1}
SYNC_TOLERANCE_S = 0.1


def launch(codec: str) -> dict[str, str]:
    return {"/cam": testsrc_with_audio(codec, width=320, height=240, fps=15, gop=15)}


class TeeSource(RtspSource):
    """The real RtspSource; every audio packet it emits is also kept for the test."""

    def __init__(self, url: str, transport: Transport, seen: list[AudioPacket]) -> None:
        super().__init__(url, transport=transport)
        self._seen = seen

    def attach_audio(self, emit_audio: Callable[[AudioPacket], None]) -> None:
        def tee(packet: AudioPacket) -> None:
            self._seen.append(packet)
            emit_audio(packet)

        super().attach_audio(tee)


@pytest.fixture
async def hubs() -> AsyncIterator[list[CameraHub]]:
    made: list[CameraHub] = []
    yield made
    for hub in made:
        await hub.close()


async def live_hub(hubs: list[CameraHub], factory: Callable[[], RtspSource]) -> CameraHub:
    hub = CameraHub("cam", factory, preload=True)  # type: ignore[arg-type]
    hubs.append(hub)
    await hub.boot()
    await hub.wait_live(WAIT)
    return hub


async def synced_units(hub: CameraHub, count: int) -> list[AccessUnit]:
    """`count` pictures once the camera's video sender reports have arrived."""
    sub = hub.subscribe()
    units: list[AccessUnit] = []
    try:
        while len(units) < count:
            unit = (await asyncio.wait_for(sub.get(), WAIT)).unit
            if unit.capture is not None:
                units.append(unit)
    finally:
        hub.unsubscribe(sub)
    return units


def assert_steady(packets: list[AudioPacket], frame: int) -> None:
    steps = [b.timestamp - a.timestamp for a, b in itertools.pairwise(packets)]
    assert all(step > 0 and step % frame == 0 for step in steps), steps
    assert statistics.median(steps) == frame


def assert_in_sync(packets: list[AudioPacket], units: list[AccessUnit]) -> None:
    """Both tracks' capture times (the camera's pipeline clock) agree with each other:
    the same delay from capture to arrival, within SYNC_TOLERANCE_S. The shortest delay
    of each: the camera's encoders lag now and then on a loaded machine, not always."""
    audio = min(p.arrival - p.capture for p in packets if p.capture is not None)
    video = min(u.arrival - u.capture for u in units if u.capture is not None)
    assert abs(audio - video) < SYNC_TOLERANCE_S, (audio, video)


# --- passthrough codecs from a GStreamer camera ------------------------------------------


@pytest.mark.rtsp
@pytest.mark.parametrize("transport", ["tcp", "udp"])
@pytest.mark.parametrize("codec", ["PCMA", "PCMU", "OPUS"])
async def test_camera_audio_reaches_listeners(
    rtsp_server: RtspServerFactory, hubs: list[CameraHub], codec: str, transport: Transport
) -> None:
    server = await rtsp_server(launch(codec))
    hub = await live_hub(hubs, lambda: RtspSource(server.url("/cam"), transport=transport))
    status = hub.status()
    assert (status.audio_codec, status.audio_rate, status.audio_channels) == (
        codec, RATE[codec], CHANNELS[codec],
    )  # fmt: skip
    assert status.audio_output == codec and status.audio_refused is None
    sub = hub.subscribe_audio()
    assert sub is not None and sub.format == hub.audio.output_format
    packets: list[AudioPacket] = []
    while len(packets) < 25 or packets[-1].capture is None:  # until sender reports came
        packets.append(await asyncio.wait_for(sub.get(), WAIT))
    assert all(p.payload for p in packets)
    assert_steady(packets[-25:], FRAME[codec])
    assert hub.status().listeners == 1
    assert_in_sync(packets[-25:], await synced_units(hub, 20))


# --- AAC: recognised and depacketized (transcoding it is the fan-out's job) -------------


@pytest.mark.rtsp
@pytest.mark.parametrize(
    ("framing", "transport"), [("AAC", "tcp"), ("AAC", "udp"), ("LATM", "tcp")]
)
async def test_aac_camera_access_units(
    rtsp_server: RtspServerFactory, hubs: list[CameraHub], framing: str, transport: Transport
) -> None:
    server = await rtsp_server(launch(framing))
    seen: list[AudioPacket] = []
    hub = await live_hub(hubs, lambda: TeeSource(server.url("/cam"), transport, seen))
    camera_format = hub.audio.camera_format
    assert camera_format is not None
    assert (camera_format.codec, camera_format.clock_rate, camera_format.channels) == (
        "AAC", 16000, 1,
    )  # fmt: skip
    assert camera_format.config[:2] == bytes.fromhex("1408")  # AAC-LC, 16 kHz, mono
    # Without a transcoder nobody can hear AAC, and the camera object says so.
    assert hub.subscribe_audio() is None
    assert hub.status().audio_refused == "AAC 16000 Hz mono: not supported"
    await wait_until(lambda: len(seen) >= 20 and seen[-1].capture is not None, WAIT)
    packets = seen[-20:]
    assert all(0 < len(p.payload) < 2048 for p in packets)
    # raw access units: no ADTS header (sync word 0xFFF) in front
    assert not any(p.payload[0] == 0xFF and p.payload[1] >> 4 == 0xF for p in packets)
    assert_steady(packets, FRAME["AAC"])
    assert_in_sync(packets, await synced_units(hub, 20))


# --- a camera that changes its audio codec on reconnect ----------------------------------


@pytest.mark.rtsp
async def test_codec_change_ends_old_listeners(
    rtsp_server: RtspServerFactory, hubs: list[CameraHub]
) -> None:
    server = await rtsp_server(launch("PCMA"))
    hub = await live_hub(hubs, lambda: RtspSource(server.url("/cam")))
    sub = hub.subscribe_audio()
    assert sub is not None
    await asyncio.wait_for(sub.get(), WAIT)
    await server.stop()  # the camera reboots with another codec, on the same port
    await rtsp_server(launch("OPUS"), port=server.port)
    with pytest.raises(SubscriptionClosed):
        while True:
            await asyncio.wait_for(sub.get(), WAIT * 2)
    assert hub.status().audio_codec == "OPUS"
    fresh = hub.subscribe_audio()
    assert fresh is not None and fresh.format.codec == "OPUS"
    await asyncio.wait_for(fresh.get(), WAIT)


# --- what GStreamer can't show: scripted cameras ------------------------------------------


async def test_g726_is_refused_and_video_plays(hubs: list[CameraHub]) -> None:
    async with AudioCamera(sdp=G726_SDP) as camera:
        hub = await live_hub(hubs, lambda: RtspSource(f"rtsp://127.0.0.1:{camera.port}/cam"))
        status = hub.status()
        assert status.audio_refused == "G726-32 8000 Hz: not supported"
        assert status.audio_codec is None and hub.subscribe_audio() is None
        setups = [r.uri for r in camera.requests if r.method == "SETUP"]
        assert setups == [f"rtsp://127.0.0.1:{camera.port}/cam/trackID=1"]  # video only


async def test_refused_audio_setup_leaves_video_playing(hubs: list[CameraHub]) -> None:
    async with AudioCamera(sdp=PCMA_SDP, refuse_audio=True) as camera:
        hub = await live_hub(hubs, lambda: RtspSource(f"rtsp://127.0.0.1:{camera.port}/cam"))
        status = hub.status()
        assert status.audio_refused == "the camera refused audio: 403 Forbidden"
        assert status.audio_codec is None and hub.subscribe_audio() is None
        assert sum(r.method == "SETUP" for r in camera.requests) == 2


async def test_no_audio_setup_without_a_listener_attached() -> None:
    async with AudioCamera(sdp=PCMA_SDP, frames=40) as camera:
        source = RtspSource(f"rtsp://127.0.0.1:{camera.port}/cam")  # attach_audio not called
        units: list[AccessUnit] = []
        task = asyncio.create_task(source.run(units.append))
        try:
            await wait_until(lambda: len(units) >= 5, WAIT)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert sum(r.method == "SETUP" for r in camera.requests) == 1
        assert source.audio_format is None and source.audio_refused is None


async def test_hostile_audio_never_touches_video(hubs: list[CameraHub]) -> None:
    seen: list[AudioPacket] = []
    async with AudioCamera(sdp=AAC_SDP, hostile_audio=True, frames=300) as camera:
        url = f"rtsp://127.0.0.1:{camera.port}/cam"
        sources: list[TeeSource] = []

        def factory() -> TeeSource:
            sources.append(TeeSource(url, "tcp", seen))
            return sources[-1]

        hub = await live_hub(hubs, factory)
        frames = hub.frames_received
        await wait_until(lambda: camera.good_audio_packets >= 100, WAIT)
        await wait_until(lambda: hub.frames_received >= frames + 50, WAIT)
        assert len(sources) == 1 and hub.status().error is None  # never reconnected
        source = sources[0]
        # per round: the wrong payload type, a giant AU, headers past the end, an
        # overlong fragmented frame, and a fragment abandoned for the next frame
        assert source.audio_dropped >= 4 * 50
        assert len(seen) >= 50 and all(p.payload == b"good" for p in seen)
        assert source._audio is not None
        assert len(source._audio._depacketizer._fragment) <= 16 * 1024  # bounded


# --- an ONVIF camera streams through the same client --------------------------------------


@pytest.mark.rtsp
@pytest.mark.parametrize("audio", ["auto", "off"])
async def test_onvif_camera_audio(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory, audio: str
) -> None:
    pytest.importorskip("onvif")
    server = await rtsp_server(
        {"/MainStream": testsrc_with_audio("PCMU", width=320, height=240, fps=15, gop=15)}
    )
    device = OnvifTestDevice(
        username="admin",
        password="secret",
        rtsp_url=f"rtsp://127.0.0.1:{server.port}/{{profile}}",
        profiles=(Profile("MainStream", 320, 240, ptz=False),),
        ptz=False,
    )
    await device.start()
    try:
        onvif = {"host": device.host, "port": device.port, "username": "admin",
                 "password": "secret"}  # fmt: skip
        gw = await start_gateway([{"name": "cam", "onvif": onvif, "preload": True, "audio": audio}])
        hub = gw.hub("cam")
        await hub.wait_live(WAIT)
        if audio == "off":
            assert hub.status().audio_codec is None and hub.subscribe_audio() is None
            return
        assert hub.status().audio_codec == "PCMU"
        sub = hub.subscribe_audio()
        assert sub is not None and sub.format.codec == "PCMU"
        packets: list[AudioPacket] = []
        while len(packets) < 25 or packets[-1].capture is None:
            packets.append(await asyncio.wait_for(sub.get(), WAIT))
        assert_steady(packets[-25:], FRAME["PCMU"])
        assert_in_sync(packets[-25:], await synced_units(hub, 20))
    finally:
        await device.stop()


async def test_receiver_reports_for_the_audio_track(
    hubs: list[CameraHub], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rtsp_module, "RTCP_INTERVAL_S", 0.2)
    async with AudioCamera(sdp=AAC_SDP, hostile_audio=True, frames=300) as camera:
        await live_hub(hubs, lambda: RtspSource(f"rtsp://127.0.0.1:{camera.port}/cam"))

        def audio_reports() -> list[bytes]:
            channel = AUDIO_CHANNEL + 1
            return [f.data for f in camera.client_frames if f.channel == channel]

        await wait_until(lambda: any(r[0] & 0x1F == 1 for r in audio_reports()), WAIT)
        report = next(r for r in audio_reports() if r[0] & 0x1F == 1)
        assert report[1] == 201  # a receiver report, with one block about the audio SSRC
        assert int.from_bytes(report[8:12], "big") == 1234

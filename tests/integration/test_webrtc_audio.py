"""The camera's sound reaches WHEP viewers that ask for it: the demo camera's Opus,
untouched, on the fast send path, the fallback path and through send workers, with
sender reports that put sound and picture on one clock."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import av
import pytest

from gateway.compat.check import FORCE_ENV
from gateway.sources.demo import FLASH_LUMA
from gateway.sources.demo_audio import PACKET_SAMPLES
from tests.integration.conftest import GatewayFactory, RunningGateway
from tests.rig import g711_camera
from tests.rig.audio_viewer import AudioRecord, AudioWhepViewer, decode_audio, peak
from tests.rig.netns import NetNamespace
from tests.rig.whep_client import WhepViewer

SMALL = {"width": 320, "height": 240, "fps": 10, "bitrate_kbps": 400, "gop_seconds": 1}
DEMO = [{"name": "cam", "source": "demo", "demo": SMALL, "preload": True}]
BEEP_PEAK = 4000  # the beep's samples reach ~8000 (amplitude 0.25); the hum stays < 400

AudioViewerFactory = Callable[..., Awaitable[AudioWhepViewer]]


@pytest.fixture
async def audio_viewer(netns: NetNamespace | None) -> AsyncIterator[AudioViewerFactory]:
    viewers: list[WhepViewer] = []

    async def make(base_url: str, camera: str, **kwargs: Any) -> AudioWhepViewer:
        viewer = AudioWhepViewer(base_url, camera, **kwargs)
        viewers.append(viewer)
        return await viewer.start()

    yield make
    for viewer in viewers:
        with contextlib.suppress(Exception):
            await viewer.close()


def _beeps(records: list[AudioRecord]) -> list[int]:
    """RTP timestamps of the packets where a beep starts."""
    decoded = decode_audio("opus", [r.payload for r in records], 48_000)
    loud = [peak(samples) > BEEP_PEAK for samples in decoded]
    return [records[i].timestamp for i in range(1, len(records)) if loud[i] and not loud[i - 1]]


async def _hears_the_demo(gw: RunningGateway, audio_viewer: AudioViewerFactory) -> AudioWhepViewer:
    viewer = await audio_viewer(gw.base_url, "cam")
    assert viewer.answer_audio_direction() == "sendonly"
    assert "opus/48000" in (viewer.answer_sdp or "")
    await viewer.wait_audio(150, timeout=60)  # 3 s: three beeps
    assert {len(r.payload) > 0 for r in viewer.audio} == {True}
    steps = {
        (b.timestamp - a.timestamp) % (1 << 32)
        for a, b in zip(viewer.audio, viewer.audio[1:], strict=False)
    }
    assert PACKET_SAMPLES in steps
    assert len(_beeps(viewer.audio)) >= 2  # sound, not silence
    return viewer


async def test_the_fast_path_sends_the_demos_opus_without_markers(
    start_gateway: GatewayFactory, audio_viewer: AudioViewerFactory
) -> None:
    gw = await start_gateway(cameras=DEMO)
    viewer = await _hears_the_demo(gw, audio_viewer)
    assert not any(r.marker for r in viewer.audio)  # continuous audio: no marker bit
    (session,) = gw.gateway.sessions
    assert session.audio is not None and session.audio.send_loop is not None
    assert gw.hub("cam").audio.listeners == 1
    await viewer.close()
    await session.closed.wait()
    assert gw.hub("cam").audio.listeners == 0  # unsubscribed with the session


async def test_the_fallback_path_sends_the_demos_opus(
    start_gateway: GatewayFactory,
    audio_viewer: AudioViewerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(FORCE_ENV, "fallback")
    gw = await start_gateway(cameras=DEMO)
    await _hears_the_demo(gw, audio_viewer)
    (session,) = gw.gateway.sessions
    assert session.audio is not None and session.audio.send_loop is None  # aiortc's loop


async def test_send_workers_send_the_demos_opus(
    start_gateway: GatewayFactory, audio_viewer: AudioViewerFactory
) -> None:
    webrtc = {"candidates": {"addresses": ["127.0.0.1"]}, "send_workers": 1}
    gw = await start_gateway(cameras=DEMO, webrtc=webrtc)
    await _hears_the_demo(gw, audio_viewer)


async def test_an_offer_without_audio_gets_video_only(
    start_gateway: GatewayFactory, netns: NetNamespace | None
) -> None:
    gw = await start_gateway(cameras=DEMO)
    viewer = await WhepViewer(gw.base_url, "cam").start()
    try:
        await viewer.wait_frames(5, timeout=60)
        assert "m=audio" not in (viewer.answer_sdp or "")
        (session,) = gw.gateway.sessions
        assert session.audio is None and gw.hub("cam").audio.listeners == 0
    finally:
        await viewer.close()


async def test_a_camera_without_audio_answers_the_audio_line_inactive(
    start_gateway: GatewayFactory, audio_viewer: AudioViewerFactory
) -> None:
    gw = await start_gateway(cameras=[{**DEMO[0], "audio": "off"}])
    viewer = await audio_viewer(gw.base_url, "cam")
    assert viewer.answer_audio_direction() == "inactive"
    await viewer.wait_frames(5, timeout=60)  # the video is unaffected


async def test_an_offer_without_the_cameras_codec_answers_audio_inactive(
    start_gateway: GatewayFactory, audio_viewer: AudioViewerFactory
) -> None:
    gw = await start_gateway(cameras=DEMO)
    viewer = await audio_viewer(gw.base_url, "cam", audio_codecs=("audio/PCMU",))
    assert viewer.answer_audio_direction() == "inactive"
    await viewer.wait_frames(5, timeout=60)


def _flashes(viewer: WhepViewer) -> list[int]:
    """RTP timestamps of the pictures that show the demo's white box."""
    decoder = av.CodecContext.create("h264", "r")
    width, height = SMALL["width"], SMALL["height"]
    x, y = width - width // 10, height - height // 10  # inside the box
    found = []
    for record in viewer.encoded:
        for frame in decoder.decode(av.Packet(record.data)):
            luma = frame.planes[0]
            if bytes(luma)[y * luma.line_size + x] > (FLASH_LUMA + 16) // 2:
                found.append(record.rtp_timestamp)
    return found


async def test_sender_reports_put_the_beep_on_the_flash(
    start_gateway: GatewayFactory, audio_viewer: AudioViewerFactory
) -> None:
    """The demo beeps exactly when it flashes: mapped through the sender reports the
    viewer got, the flash picture and the beep's first packet are at the same time."""
    gw = await start_gateway(cameras=DEMO)
    viewer = await audio_viewer(gw.base_url, "cam", decode=True, keep_encoded=True)
    await viewer.wait_audio(200, timeout=60)
    await viewer.wait_reports()
    video_report, audio_report = viewer.video_reports[-1], viewer.audio_reports[-1]
    flashes = [video_report.seconds_of(ts, 90_000) for ts in _flashes(viewer)]
    beeps = [audio_report.seconds_of(ts, 48_000) for ts in _beeps(viewer.audio)]
    heard = [f for f in flashes if beeps[0] - 0.5 < f < beeps[-1] + 0.5]  # while audio ran
    assert len(heard) >= 2, (flashes, beeps)
    offsets = [min((b - f for b in beeps), key=abs) for f in heard]
    assert all(abs(offset) < 0.005 for offset in offsets), offsets


@pytest.mark.parametrize(
    ("codec", "send_path"),
    [("PCMU", "fast"), ("PCMA", "fast"), ("PCMU", "fallback")],
)
async def test_g711_reaches_the_viewer_byte_for_byte(
    start_gateway: GatewayFactory,
    audio_viewer: AudioViewerFactory,
    monkeypatch: pytest.MonkeyPatch,
    codec: str,
    send_path: str,
) -> None:
    monkeypatch.setenv(FORCE_ENV, send_path)
    source = f"g711-test-{codec.lower()}"
    with g711_camera.registered() as cameras:
        gw = await start_gateway(cameras=[{"name": "cam", "source": source, "preload": True}])
        await _passes_through(gw, audio_viewer, codec, cameras)


async def _passes_through(
    gw: RunningGateway,
    audio_viewer: AudioViewerFactory,
    codec: str,
    cameras: list[g711_camera.G711Camera],
) -> None:
    viewer = await audio_viewer(gw.base_url, "cam")
    assert viewer.answer_audio_direction() == "sendonly"
    assert f"{codec}/8000" in (viewer.answer_sdp or "")
    assert "opus" not in (viewer.answer_sdp or "").lower()  # exactly the camera's codec
    await viewer.wait_audio(50, timeout=60)
    (camera,) = cameras
    received = [r.payload for r in viewer.audio[:50]]
    assert camera.emitted.count(received[0]) == 1  # every packet differs
    start = camera.emitted.index(received[0])
    assert camera.emitted[start : start + len(received)] == received
    steps = {
        (b.timestamp - a.timestamp) % (1 << 32)
        for a, b in zip(viewer.audio, viewer.audio[1:50], strict=False)
    }
    assert steps == {g711_camera.PACKET_SAMPLES}


class _OwnCredentialsViewer(AudioWhepViewer):
    """Offers its video m-line with ICE credentials of its own (as aiortc 1.12 does:
    one ICE agent per m-line until BUNDLE is negotiated). Only the audio m-line's, the
    BUNDLE tag's, are the ones this viewer answers connectivity checks with."""

    async def _local_offer(self) -> str:
        offer = await super()._local_offer()
        audio, video = offer.split("m=video", 1)
        video = re.sub(r"a=ice-ufrag:\S+", "a=ice-ufrag:vvvv", video)
        video = re.sub(r"a=ice-pwd:\S+", "a=ice-pwd:video0only0password0000", video)
        return audio + "m=video" + video


async def test_bundled_m_lines_connect_on_the_bundle_tags_credentials(
    start_gateway: GatewayFactory, netns: NetNamespace | None
) -> None:
    gw = await start_gateway(cameras=DEMO)
    viewer = _OwnCredentialsViewer(gw.base_url, "cam")
    try:
        await viewer.start()
        assert viewer.pc.getTransceivers()[0].kind == "audio"  # the BUNDLE tag
        await viewer.wait_frames(5, timeout=60)
        await viewer.wait_audio(50, timeout=60)
    finally:
        await viewer.close()

"""An AAC camera's sound through a CameraHub: transcoded to Opus once, only while someone
listens, the picture unaffected. The camera is the real demo encoder plus real AAC
access units (PyAV's encoder) at the camera's pace; the GStreamer camera test runs once
the RTSP client sets up audio tracks."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

import pytest

from gateway.audio.transcode import AacToOpus, aac_to_opus
from gateway.config import DemoSettings
from gateway.hub import CameraHub
from gateway.media.accessunit import AccessUnit
from gateway.media.audio import AudioFormat, AudioPacket
from gateway.sources.demo import DemoSource
from gateway.sources.rtsp import RtspSource
from tests.conftest import RtspServerFactory
from tests.integration.conftest import GatewayFactory
from tests.rig.aac_audio import AacStream, aac_sine, decode_opus, peak_frequency
from tests.rig.streams import testsrc_h264
from tests.rig.wait import wait_until

SMALL = DemoSettings(width=320, height=180, fps=15, bitrate_kbps=200, gop_seconds=1.0)


class AacDemoCamera(DemoSource):
    """The demo camera with a microphone that sends AAC (AudioCapable)."""

    def __init__(self, stream: AacStream) -> None:
        super().__init__(SMALL)
        self.stream = stream
        self.audio_format: AudioFormat | None = stream.format
        self.audio_refused: str | None = None
        self._emit_audio: Callable[[AudioPacket], None] | None = None

    def attach_audio(self, emit_audio: Callable[[AudioPacket], None]) -> None:
        self._emit_audio = emit_audio

    async def run(self, emit: Callable[[AccessUnit], None]) -> None:
        sound = asyncio.create_task(self._send_audio())
        try:
            await super().run(emit)
        finally:
            sound.cancel()

    async def _send_audio(self) -> None:
        """The access units in a loop, at the pace of their samples."""
        rate, per_unit = self.stream.format.clock_rate, self.stream.samples_per_unit
        start, n = time.monotonic(), 0
        while True:
            unit = self.stream.units[n % len(self.stream.units)]
            if self._emit_audio is not None:
                timestamp = n * per_unit
                packet = AudioPacket(unit, timestamp, time.monotonic(), 1e9 + timestamp / rate)
                self._emit_audio(packet)
            n += 1
            await asyncio.sleep(max(0.0, start + n * per_unit / rate - time.monotonic()))


def aac_hub(stream: AacStream) -> CameraHub:
    return CameraHub(
        "aac", lambda: AacDemoCamera(stream), linger_s=0.5, audio_transcoder=aac_to_opus("aac")
    )


async def test_an_aac_camera_is_heard_as_opus_while_someone_listens() -> None:
    hub = aac_hub(aac_sine(16000, 1, seconds=2.0, frequency=660.0))
    viewer = hub.subscribe()
    try:
        await asyncio.wait_for(viewer.get(), 20)
        await wait_until(lambda: hub.audio.output_format is not None)
        status = hub.status()
        assert (status.audio_codec, status.audio_rate, status.audio_channels) == ("AAC", 16000, 1)
        assert status.audio_output == "OPUS" and status.audio_refused is None
        assert hub.audio._transcoder is None  # nobody listens yet: nothing transcoded

        listener = hub.subscribe_audio()
        assert listener is not None and listener.format == AudioFormat("OPUS", 48000, 2)
        heard = [await asyncio.wait_for(listener.get(), 10) for _ in range(60)]
        transcoder = hub.audio._transcoder
        assert isinstance(transcoder, AacToOpus) and transcoder.running
        assert hub.status().listeners == 1
        stamps = [p.timestamp for p in heard]
        assert all(b - a == 960 for a, b in itertools.pairwise(stamps))
        assert all(p.capture is not None for p in heard)
        pcm = decode_opus([p.payload for p in heard])[9600:]
        assert peak_frequency(pcm) == pytest.approx(660.0, abs=10.0)

        hub.unsubscribe_audio(listener)
        assert hub.audio._transcoder is None
        assert await asyncio.to_thread(transcoder.join, 10.0)  # its thread ended
        for _ in range(5):  # the picture goes on
            await asyncio.wait_for(viewer.get(), 10)
    finally:
        hub.unsubscribe(viewer)
        await hub.close()


@pytest.mark.parametrize(
    ("config", "why"),
    [
        (b"\x19\x88", "AAC SSR is not supported"),  # refused by its header
        (b"\x14\x00", "the decoder refuses its AudioSpecificConfig"),  # LC, no channels
    ],
    ids=["header", "decoder"],
)
async def test_an_aac_camera_whose_config_is_unusable_is_refused_at_once(
    config: bytes, why: str
) -> None:
    """Known when the camera's audio is, not when the first listener comes: the camera
    object never says OPUS, nobody can subscribe, the picture goes on."""
    stream = aac_sine(16000, 1, seconds=1.0)
    hub = aac_hub(AacStream(AudioFormat("AAC", 16000, 1, config), stream.units))
    viewer = hub.subscribe()
    try:
        await asyncio.wait_for(viewer.get(), 20)
        await wait_until(lambda: hub.status().audio_codec is not None)
        status = hub.status()
        assert status.audio_codec == "AAC" and status.audio_output is None
        assert why in (status.audio_refused or ""), status.audio_refused
        assert hub.subscribe_audio() is None
        for _ in range(5):
            await asyncio.wait_for(viewer.get(), 10)
    finally:
        hub.unsubscribe(viewer)
        await hub.close()


AAC_CAMERA = (
    "( {video} audiotestsrc is-live=true wave=sine freq=523 ! audioconvert "
    "! audio/x-raw,rate=16000,channels=1 ! voaacenc bitrate=32000 "
    "! rtpmp4gpay name=pay1 pt=97 )"
)


async def test_gstreamer_aac_camera_is_heard_as_opus(
    rtsp_server: RtspServerFactory, start_gateway: GatewayFactory
) -> None:
    """A GStreamer camera sending AAC (audiotestsrc ! voaacenc ! rtpmp4gpay, RFC 3640)
    through camgate's RTSP client: heard as Opus of the same tone."""
    if not hasattr(RtspSource, "attach_audio"):
        pytest.skip("the RTSP client sets up no audio tracks yet")
    video = testsrc_h264(width=320, height=180, fps=15).strip().removeprefix("(").removesuffix(")")
    server = await rtsp_server({"/cam": AAC_CAMERA.format(video=video)})
    gw = await start_gateway(cameras=[{"name": "cam", "source": server.url("/cam")}])
    hub = gw.gateway.hubs["cam"]
    viewer = hub.subscribe()
    try:
        await asyncio.wait_for(viewer.get(), 30)
        await wait_until(lambda: hub.audio.output_format is not None)
        assert hub.status().audio_codec == "AAC" and hub.status().audio_output == "OPUS"
        listener = hub.subscribe_audio()
        assert listener is not None
        heard = [await asyncio.wait_for(listener.get(), 10) for _ in range(60)]
        stamps = [p.timestamp for p in heard]
        assert all(b - a == 960 for a, b in itertools.pairwise(stamps))
        pcm = decode_opus([p.payload for p in heard])[9600:]
        assert peak_frequency(pcm) == pytest.approx(523.0, abs=10.0)
        hub.unsubscribe_audio(listener)
    finally:
        hub.unsubscribe(viewer)

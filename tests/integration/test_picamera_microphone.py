"""The Pi camera's microphone: ALSA through PyAV on its own thread, Opus out, capture
times on the pictures' clock. There is no ALSA device here: FFmpeg's lavfi `sine`
(paced by `arealtime`, as a sound card paces its reads) stands in for one through the
source's input opener; the missing-device case uses the real ALSA input."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import av
import pytest

from gateway.config import parse_config
from gateway.hub import CameraHub
from gateway.media.accessunit import AccessUnit
from gateway.media.audio import AudioFormat, AudioPacket
from gateway.sources.picamera import PicameraSettings, PicameraWithMicrophone
from gateway.sources.picamera_audio import Microphone, MicrophoneSettings
from tests.rig.aac_audio import decode_opus, peak_frequency
from tests.rig.wait import wait_until

FAKE_DIR = Path(__file__).parents[1] / "rig" / "fake_picamera2"
LIBCAMERA_DIR = Path(__file__).parents[1] / "rig" / "fake_libcamera"
MISSING = "hw:7,0"  # no such sound card here


def sine_input(frequency: int) -> Any:
    def open_input(settings: MicrophoneSettings) -> Any:
        spec = f"sine=frequency={frequency}:sample_rate={settings.rate},arealtime"
        if settings.channels == 2:
            spec += ",aformat=channel_layouts=stereo"
        return av.open(spec, format="lavfi")

    return open_input


@pytest.fixture
def fake_picamera2() -> Iterator[ModuleType]:
    sys.path[:0] = [str(FAKE_DIR), str(LIBCAMERA_DIR)]
    import picamera2

    picamera2.FAKE.reset()
    try:
        yield picamera2
    finally:
        picamera2.FAKE.unplugged.set()
        for camera in picamera2.FAKE.opened:
            camera.stop_recording()
        sys.path.remove(str(FAKE_DIR))
        sys.path.remove(str(LIBCAMERA_DIR))
        for name in [n for n in sys.modules if n.split(".")[0] in ("picamera2", "libcamera")]:
            del sys.modules[name]


@pytest.mark.parametrize(("rate", "channels"), [(16000, 1), (48000, 2)])
async def test_the_microphone_sends_20ms_opus_with_capture_times(rate: int, channels: int) -> None:
    microphone = Microphone(MicrophoneSettings("hw:1,0", rate, channels), sine_input(1000))
    microphone.set_listening(True)
    heard: list[tuple[AudioPacket, float]] = []
    started = time.time()
    microphone.start(lambda packet: heard.append((packet, time.time())))
    try:
        await wait_until(lambda: len(heard) >= 50)
    finally:
        await microphone.stop()
    assert not microphone.running
    assert microphone.format == AudioFormat("OPUS", 48000, 2) and microphone.refused is None
    packets = [p for p, _ in heard]
    assert [p.timestamp for p in packets] == [960 * n for n in range(len(packets))]
    for packet, received in heard:  # captured before it reached us, after we started
        assert packet.capture is not None
        assert started - 1.0 <= packet.capture <= received
    pcm = decode_opus([p.payload for p in packets])[4800:]
    assert peak_frequency(pcm) == pytest.approx(1000.0, abs=10.0)


async def test_a_missing_microphone_is_refused_with_a_clear_reason() -> None:
    microphone = Microphone(MicrophoneSettings(MISSING))  # the real ALSA input
    microphone.start(lambda packet: None)
    try:
        await wait_until(lambda: microphone.refused is not None)
    finally:
        await microphone.stop()
    assert not microphone.running  # stop() cut the retry wait short
    assert microphone.format is None
    refused = microphone.refused or ""
    assert refused.startswith(f"microphone {MISSING} did not open")
    assert "arecord -l" in refused and "audio group" in refused


def test_the_microphone_config() -> None:
    config = parse_config(
        "cameras: [{name: pi, picamera: {audio: {device: 'hw:1,0', rate: 16000}}}]"
    )
    audio = config.cameras[0].picamera.audio
    assert audio == MicrophoneSettings("hw:1,0", 16000, 1)
    assert parse_config("cameras: [{name: pi, source: picamera}]").cameras[0].picamera.audio is None


def pi_hub(open_input: Any) -> CameraHub:
    settings = PicameraSettings(
        width=320, height=240, framerate=15, audio=MicrophoneSettings("hw:1,0", 48000, 1)
    )
    return CameraHub("pi", lambda: PicameraWithMicrophone(settings, open_input), linger_s=0.5)


async def test_the_pi_camera_is_heard_in_sync_with_its_pictures(
    fake_picamera2: ModuleType,
) -> None:
    hub = pi_hub(sine_input(440))
    viewer = hub.subscribe()
    try:
        await asyncio.wait_for(viewer.get(), 30)
        await wait_until(lambda: hub.audio.output_format is not None)
        status = hub.status()
        assert (status.audio_codec, status.audio_output, status.audio_refused) == (
            "OPUS",
            "OPUS",
            None,
        )
        listener = hub.subscribe_audio()
        assert listener is not None
        sound = [await asyncio.wait_for(listener.get(), 10) for _ in range(25)]
        picture: AccessUnit = (await asyncio.wait_for(viewer.get(), 10)).unit
        assert picture.capture is not None and sound[-1].capture is not None
        # One clock for both: what was captured about now, on either track, says so.
        assert abs(picture.capture - sound[-1].capture) < 1.0
        assert abs(picture.capture - time.time()) < 2.0
        pcm = decode_opus([p.payload for p in sound])[4800:]
        assert peak_frequency(pcm) == pytest.approx(440.0, abs=10.0)
        hub.unsubscribe_audio(listener)
    finally:
        hub.unsubscribe(viewer)
        await hub.close()


class CountingInput:
    """An input opener that counts the devices it opened and the ones closed again."""

    def __init__(self, open_input: Any) -> None:
        self._open_input = open_input
        self.opened = 0
        self.closed = 0

    def __call__(self, settings: MicrophoneSettings) -> Any:
        container = self._open_input(settings)
        self.opened += 1
        counter = self

        class Counted:
            streams = container.streams

            def demux(self, *args: Any) -> Any:
                return container.demux(*args)

            def close(self) -> None:
                counter.closed += 1
                container.close()

        return Counted()


async def test_the_microphone_records_only_while_someone_listens(
    fake_picamera2: ModuleType,
) -> None:
    device = CountingInput(sine_input(440))
    settings = PicameraSettings(
        width=320, height=240, framerate=15, audio=MicrophoneSettings("hw:1,0", 48000, 1)
    )
    sources: list[PicameraWithMicrophone] = []

    def make() -> PicameraWithMicrophone:
        sources.append(PicameraWithMicrophone(settings, device))
        sources[-1].microphone.linger_s = 60.0  # until the test says otherwise
        return sources[-1]

    hub = CameraHub("pi", make, linger_s=0.5)
    viewer = hub.subscribe()
    try:
        await asyncio.wait_for(viewer.get(), 30)
        # Opened once to check it, closed at once: nobody listens.
        await wait_until(lambda: hub.status().audio_output == "OPUS" and device.closed == 1)
        (source,) = sources
        assert device.opened == 1 and source.microphone.packets_out == 0

        first = hub.subscribe_audio()
        assert first is not None
        heard = [await asyncio.wait_for(first.get(), 10) for _ in range(10)]
        assert (device.opened, device.closed) == (2, 1)
        hub.unsubscribe_audio(first)  # the last listener left: the device lingers
        second = hub.subscribe_audio()
        assert second is not None
        heard += [await asyncio.wait_for(second.get(), 10) for _ in range(10)]
        assert (device.opened, device.closed) == (2, 1)  # the same recording

        source.microphone.linger_s = 0.0
        hub.unsubscribe_audio(second)
        await wait_until(lambda: device.closed == 2)
        assert source.microphone.running  # the thread waits for the next listener

        third = hub.subscribe_audio()
        assert third is not None
        later = await asyncio.wait_for(third.get(), 10)
        assert device.opened == 3
        assert later.timestamp > heard[-1].timestamp  # one timeline across recordings
        hub.unsubscribe_audio(third)
        for _ in range(5):  # the pictures went on throughout
            await asyncio.wait_for(viewer.get(), 10)
    finally:
        hub.unsubscribe(viewer)
        await hub.close()


async def test_a_busy_or_missing_microphone_leaves_the_picture_alone(
    fake_picamera2: ModuleType,
) -> None:
    def busy(settings: MicrophoneSettings) -> Any:
        raise av.error.OSError(16, "Device or resource busy", settings.device)

    hub = pi_hub(busy)
    viewer = hub.subscribe()
    try:
        await wait_until(lambda: hub.status().audio_refused is not None)
        status = hub.status()
        assert "microphone hw:1,0 did not open (Device or resource busy)" in (
            status.audio_refused or ""
        )
        assert status.audio_codec is None and hub.subscribe_audio() is None
        for _ in range(10):  # the pictures go on
            await asyncio.wait_for(viewer.get(), 10)
    finally:
        hub.unsubscribe(viewer)
        await hub.close()


async def test_audio_off_leaves_the_microphone_closed(fake_picamera2: ModuleType) -> None:
    opened: list[str] = []

    def record(settings: MicrophoneSettings) -> Any:
        opened.append(settings.device)
        return sine_input(440)(settings)

    settings = PicameraSettings(
        width=320, height=240, framerate=15, audio=MicrophoneSettings("hw:1,0")
    )
    hub = CameraHub("pi", lambda: PicameraWithMicrophone(settings, record), audio=False)
    viewer = hub.subscribe()
    try:
        for _ in range(10):
            await asyncio.wait_for(viewer.get(), 30)
        assert opened == [] and hub.status().audio_codec is None
    finally:
        hub.unsubscribe(viewer)
        await hub.close()

"""camgate's Pi camera source on the REAL picamera2 as on a Pi 5: its LibavH264Encoder
(libx264 through the PyAV camgate installs) fed by a simulated sensor behind a libcamera
stand-in (tests/rig/picamera2_rig.py). Keyframes on request, pictures that decode, a
bounded stop even when picamera2's camera thread has died, and the real open errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from types import ModuleType

import av
import pytest

from gateway.config import PicameraSettings
from gateway.media.accessunit import AccessUnit
from gateway.media.h264 import nal_type
from gateway.sources import picamera as picamera_source
from gateway.sources.base import SourceError
from gateway.sources.picamera import (
    PicameraDevice,
    PicameraSource,
    PicameraSubSource,
    PicameraSubstream,
)
from gateway.sources.picamera_encoder import keyframe_picture_type
from tests.conftest import WhepViewerFactory
from tests.integration.conftest import GatewayFactory
from tests.integration.test_snapshot import get, jpeg_size
from tests.rig import picamera2_rig
from tests.rig.picamera2_rig import real_picamera2  # noqa: F401  (fixture)
from tests.rig.wait import wait_until

# Keyframes only every 1000 frames: any other IDR must have been asked for.
SETTINGS = PicameraSettings(width=320, height=240, framerate=30, bitrate=500_000, iperiod=1000)


class Received:
    def __init__(self) -> None:
        self.units: list[AccessUnit] = []

    def __call__(self, unit: AccessUnit) -> None:
        self.units.append(unit)

    def keyframes(self) -> list[int]:
        return [n for n, u in enumerate(self.units) if u.keyframe]


@pytest.fixture
def libcamera(real_picamera2: ModuleType) -> Iterator[ModuleType]:  # noqa: F811
    import libcamera

    yield libcamera


def decodes(units: list[AccessUnit]) -> int:
    """How many pictures libavcodec decodes from the units (from their first IDR)."""
    return len(decoded_sizes(units))


def decoded_sizes(units: list[AccessUnit]) -> list[tuple[int, int]]:
    """(width, height) of each picture libavcodec decodes from the units."""
    decoder = av.CodecContext.create("h264", "r")
    sizes = []
    for unit in units:
        data = b"".join(b"\x00\x00\x00\x01" + nal for nal in unit.nals)
        for packet in decoder.parse(data):
            sizes += [(frame.width, frame.height) for frame in decoder.decode(packet)]
    return sizes


async def test_pi5_encoder_streams_forces_keyframes_and_stops(
    real_picamera2: ModuleType,  # noqa: F811
    libcamera: ModuleType,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import picamera2.encoders

    source = PicameraSource(SETTINGS)
    received = Received()
    task = asyncio.create_task(source.run(received))
    await wait_until(lambda: len(received.units) >= 15, timeout=60)
    assert isinstance(source._encoder, picamera2.encoders.LibavH264Encoder)
    first = received.units[0]
    assert first.keyframe and [nal_type(n) for n in first.nals][:2] == [7, 8]
    assert received.keyframes() == [0]

    # A new viewer's request: the next frames carry an IDR with SPS/PPS before it.
    asked_at = len(received.units)
    assert source.request_keyframe() and source.fresh_keyframes
    await wait_until(lambda: len(received.keyframes()) > 1, timeout=60)
    forced = received.keyframes()[1]
    assert asked_at <= forced < 1000
    assert {7, 8, 5} <= {nal_type(n) for n in received.units[forced].nals}

    # The camera thread lives on: pictures keep coming and decode.
    await wait_until(lambda: len(received.units) >= forced + 30, timeout=60)
    assert decodes(received.units) >= forced + 25

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=60)
    assert libcamera.RIG.stops == 1
    assert real_picamera2.Picamera2._cm.cameras == {}  # closed and released
    assert "did not return" not in caplog.text


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_dead_camera_thread_is_noticed_and_stop_is_bounded(
    real_picamera2: ModuleType,  # noqa: F811
    libcamera: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """picamera2's own force_key_frame() with this PyAV: the TypeError kills its camera
    thread (camgate never calls it on this encoder; the test does, to have a real one)."""
    if keyframe_picture_type(av) == "I":
        pytest.skip(f"PyAV {av.__version__} still takes pict_type 'I'")
    monkeypatch.setattr(picamera_source, "STALL_TIMEOUT_S", 3.0)
    monkeypatch.setattr(picamera_source, "STOP_TIMEOUT_S", 2.0)
    source = PicameraSource(SETTINGS)
    received = Received()
    task = asyncio.create_task(source.run(received))
    await wait_until(lambda: len(received.units) >= 5, timeout=60)
    caplog.set_level(logging.ERROR)
    source._encoder.force_key_frame()

    with pytest.raises(SourceError, match="no picture"):
        await asyncio.wait_for(task, timeout=60)
    assert "Exception during process_requests()" in caplog.text  # picamera2's own report
    assert "stop_recording() did not return" in caplog.text
    # close() freed the camera: camgate's retry can open it again.
    assert real_picamera2.Picamera2._cm.cameras == {}
    again = asyncio.create_task(PicameraSource(SETTINGS).run(Received()))
    await wait_until(lambda: libcamera.RIG.starts == 2, timeout=60)
    again.cancel()
    with contextlib.suppress(asyncio.CancelledError, SourceError):  # (short stall timeout)
        await asyncio.wait_for(again, timeout=60)


async def test_no_camera_and_a_busy_camera_say_so(
    real_picamera2: ModuleType,  # noqa: F811
    libcamera: ModuleType,
) -> None:
    libcamera.RIG.cameras = 0
    with pytest.raises(SourceError, match="no Pi camera 0 found"):
        await PicameraSource(SETTINGS).run(Received())

    libcamera.RIG.cameras = 1
    libcamera.RIG.held_elsewhere.add(0)  # e.g. rpicam-vid has it open
    with pytest.raises(SourceError, match="busy: another program"):
        await PicameraSource(SETTINGS).run(Received())

    libcamera.RIG.held_elsewhere.clear()
    holder = real_picamera2.Picamera2(0)  # this process holds it
    try:
        with pytest.raises(SourceError, match="busy"):
            await PicameraSource(SETTINGS).run(Received())
    finally:
        holder.close()
    assert libcamera.RIG.starts == 0


async def test_pi5_camera_through_the_gateway_viewers_and_a_snapshot(
    start_gateway: GatewayFactory,
    whep_viewer: WhepViewerFactory,
    libcamera: ModuleType,
) -> None:
    """End to end as on a Pi 5: aiortc viewers decode it, the second one starts on an IDR
    made for it (keyframes every 1000 frames otherwise), and snapshots work with the same
    PyAV the encoder uses."""
    settings = {"width": 320, "height": 240, "framerate": 30, "bitrate": 500_000}
    camera = {"name": "pi", "source": "picamera", "picamera": {**settings, "iperiod": 1000}}
    gw = await start_gateway(cameras=[camera])
    first = await whep_viewer(gw.base_url, "pi", decode=True)
    await first.wait_frames(10, timeout=60)
    hub = gw.hub("pi")
    await wait_until(lambda: hub.frames_received > 40, timeout=60)
    keyframes = hub.keyframes_received

    second = await whep_viewer(gw.base_url, "pi", decode=True)
    await second.wait_frames(1, timeout=60)
    assert hub.keyframes_received > keyframes
    assert hub.frames_received < 1000  # so that IDR was the one asked for
    await first.wait_frames(first.frames_received + 30, timeout=60)  # the camera lives on

    status, kind, body = await get(gw.base_url + "/api/cameras/pi/snapshot.jpg")
    assert (status, kind) == (200, "image/jpeg") and jpeg_size(body) == (320, 240)
    await first.close()
    await second.close()
    assert libcamera.RIG.starts == 1


def test_the_rig_loads_the_real_library() -> None:
    with picamera2_rig.loaded("vc4") as picamera2:
        import picamera2.encoders as encoders

        assert encoders.H264Encoder is not encoders.LibavH264Encoder  # Pi 3/4: V4L2
        assert "site-packages" in picamera2.__file__


@pytest.mark.parametrize("platform", picamera2_rig.PLATFORMS)
async def test_main_and_sub_stream_share_one_camera(
    platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both streams on picamera2's own code: its "lores" output configured beside "main"
    (a Pi 3/4's checks included: YUV420, no larger than main), one encoder each through
    start_encoder(name=...)/stop_encoder(), the camera started once and stopped with the
    last stream. On "vc4" the V4L2 encoder needs a Pi's /dev/video11, so picamera2's
    software encoder stands in for it; everything else is the Pi 3/4 code path."""
    with picamera2_rig.loaded(platform) as picamera2:
        import libcamera
        import picamera2.encoders as encoders

        if platform == "vc4":
            monkeypatch.setattr(encoders, "H264Encoder", encoders.LibavH264Encoder)
        sub_settings = PicameraSubstream(width=160, bitrate=200_000)
        settings = PicameraSettings(
            width=320, height=240, bitrate=500_000, iperiod=1000, substream=sub_settings
        )
        device = PicameraDevice(settings)
        main, sub = PicameraSource(settings, device), PicameraSubSource(settings, device)
        main_units, sub_units = Received(), Received()
        main_task = asyncio.create_task(main.run(main_units))
        await wait_until(lambda: len(main_units.units) >= 10, timeout=60)
        sub_task = asyncio.create_task(sub.run(sub_units))
        await wait_until(lambda: len(sub_units.units) >= 10, timeout=60)
        camera = device._camera
        assert camera.camera_config["lores"]["size"] == (160, 120)
        assert {e.name for e in camera.encoders} == {"main", "lores"}
        assert libcamera.RIG.starts == 1 and len(picamera2.Picamera2._cm.cameras) == 1

        # The sub stream's own keyframes, on request, with SPS/PPS.
        assert sub.request_keyframe()
        await wait_until(lambda: len(sub_units.keyframes()) > 1, timeout=60)
        assert set(decoded_sizes(main_units.units)) == {(320, 240)}
        assert set(decoded_sizes(sub_units.units)) == {(160, 120)}

        # The sub stream stops: the main one goes on, on the same running camera.
        sub_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(sub_task, timeout=60)
        assert [e.name for e in camera.encoders] == ["main"] and libcamera.RIG.stops == 0
        seen = len(main_units.units)
        await wait_until(lambda: len(main_units.units) >= seen + 30, timeout=60)

        main_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(main_task, timeout=60)
        assert libcamera.RIG.stops == 1 and picamera2.Picamera2._cm.cameras == {}
        assert not device.open and device.streams == 0

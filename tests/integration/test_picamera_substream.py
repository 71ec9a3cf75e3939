"""The Pi camera's main and sub stream from one sensor (the test stand-in for picamera2 as
on a Pi 3/4: real H.264 per encoder), each behind its own CameraHub as the gateway builds
them, watched by aiortc viewers: both at once from one Picamera2, the right sizes decoded,
the sub stream starting and stopping while the main one plays on, the camera released
when neither runs, and a busy or unplugged camera reported by both."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from gateway.hub import CameraHub
from gateway.sources.registry import SourceSetup, kind_named
from tests.conftest import WhepViewerFactory
from tests.integration.conftest import GatewayFactory, RunningGateway
from tests.integration.test_picamera import fake_picamera2  # noqa: F401  (fixture)
from tests.rig.wait import wait_until

MAIN = {"width": 640, "height": 360, "framerate": 30, "bitrate": 800_000}
SUB = {"width": 320, "height": 180, "bitrate": 200_000}


def camera(**settings: Any) -> dict[str, Any]:
    picamera = {**MAIN, "substream": SUB, **settings}
    return {"name": "pi", "source": "picamera", "linger": 0.5, "picamera": picamera}


def add_sub_hub(gw: RunningGateway, name: str = "pi", preload: bool = False) -> CameraHub:
    """The camera's sub stream as its own hub, built from the camera kind's
    build_substream() the way the gateway builds the main one from build()."""
    camera = next(c for c in gw.gateway.config.cameras if c.name == name)
    kind = kind_named(camera.kind)
    assert kind.build_substream is not None
    setup = SourceSetup(camera)
    assert kind.build_substream(setup) is not None

    def build() -> Any:
        assert kind.build_substream is not None
        return kind.build_substream(setup)

    hub = CameraHub(f"{name}~sub", build, preload=preload, linger_s=0.5)
    gw.gateway.hubs[hub.name] = hub  # the HTTP API's camera table: WHEP finds it
    if preload:
        hub.start()
    return hub


async def test_main_and_sub_stream_from_one_camera(
    start_gateway: GatewayFactory,
    whep_viewer: WhepViewerFactory,
    fake_picamera2: ModuleType,  # noqa: F811
) -> None:
    fake = fake_picamera2.FAKE
    gw = await start_gateway(cameras=[camera()])
    main_hub, sub_hub = gw.hub("pi"), add_sub_hub(gw)
    try:
        main = await whep_viewer(gw.base_url, "pi", decode=True)
        sub = await whep_viewer(gw.base_url, "pi~sub", decode=True)
        await main.wait_frames(10, timeout=60)
        await sub.wait_frames(10, timeout=60)
        # One sensor: one Picamera2, started once, with a "main" and a "lores" encoder.
        assert len(fake.opened) == 1 and fake.recordings == 1
        picam = fake.opened[0]
        assert picam.camera_config["main"]["size"] == (640, 360)
        assert picam.camera_config["lores"] == {
            "format": "YUV420",
            "size": (320, 180),
            "preserve_ar": False,
        }
        assert sorted(e.name for e in picam.encoders) == ["lores", "main"]
        lores = next(e for e in picam.encoders if e.name == "lores")
        assert (lores.bitrate, lores.repeat) == (200_000, True)
        assert (main.frames[-1].width, main.frames[-1].height) == (640, 360)
        assert (sub.frames[-1].width, sub.frames[-1].height) == (320, 180)

        # The sub stream's last viewer leaves: its encoder stops, the main stream plays on.
        await sub.close()
        await wait_until(lambda: not sub_hub.running and fake.encoder_stops == 1, timeout=30)
        assert [e.name for e in picam.encoders] == ["main"] and picam.started
        await main.wait_frames(main.frames_received + 30, timeout=60)

        # It comes back on the running camera: no second open, no restart.
        again = await whep_viewer(gw.base_url, "pi~sub", decode=True)
        await again.wait_frames(5, timeout=60)
        assert (again.frames[-1].width, again.frames[-1].height) == (320, 180)
        assert len(fake.opened) == 1 and fake.recordings == 1 and fake.stops == 0

        # The main stream's viewer leaves first: the sub stream plays on...
        await main.close()
        # (The hub stops before its source has stopped the encoder: wait for both.)
        await wait_until(
            lambda: not main_hub.running and [e.name for e in picam.encoders] == ["lores"],
            timeout=30,
        )
        assert picam.is_open
        await again.wait_frames(again.frames_received + 30, timeout=60)
        # ...and when it stops too, the camera is stopped and released.
        await again.close()
        await wait_until(lambda: fake.stops == 1 and not sub_hub.running, timeout=30)
        assert picam.is_open is False and not picam.encoders
    finally:
        await sub_hub.close()


async def test_a_busy_or_unplugged_camera_is_reported_by_both_streams(
    start_gateway: GatewayFactory,
    fake_picamera2: ModuleType,  # noqa: F811
) -> None:
    fake = fake_picamera2.FAKE
    fake.busy = True
    gw = await start_gateway(cameras=[{**camera(), "preload": True}])
    main_hub, sub_hub = gw.hub("pi"), add_sub_hub(gw, preload=True)
    try:
        for hub in (main_hub, sub_hub):
            await wait_until(lambda hub=hub: "busy" in (hub.error or ""), timeout=60)
        fake.busy = False  # the other program let go: both retry by themselves
        await main_hub.wait_live(60)
        await sub_hub.wait_live(60)
        assert len([c for c in fake.opened if c.is_open]) == 1  # still one camera

        fake.unplugged.set()  # the ribbon cable comes out
        for hub in (main_hub, sub_hub):
            await wait_until(lambda hub=hub: "no picture" in (hub.error or ""), timeout=60)
        fake.unplugged.clear()
        await main_hub.wait_live(60)
        await sub_hub.wait_live(60)
        assert len([c for c in fake.opened if c.is_open]) == 1
    finally:
        await sub_hub.close()


async def test_a_pi_4_refuses_a_sub_stream_its_encoder_cannot_carry(
    start_gateway: GatewayFactory,
    fake_picamera2: ModuleType,  # noqa: F811
) -> None:
    """1080p30 takes all of a Pi 3/4's H.264 block: the sub hub says why and leaves the
    camera as it found it (here: closed, as nothing else uses it)."""
    big = camera(width=1920, height=1080, bitrate=2_000_000, substream={"width": 640})
    gw = await start_gateway(cameras=[big])
    sub_hub = add_sub_hub(gw, preload=True)
    try:
        await wait_until(lambda: "hardware H.264 encoder" in (sub_hub.error or ""), timeout=60)
        assert "set `substream: off`" in (sub_hub.error or "")
        opened = fake_picamera2.FAKE.opened
        assert opened and not any(c.is_open for c in opened)
        assert fake_picamera2.FAKE.encoders == []
    finally:
        await sub_hub.close()

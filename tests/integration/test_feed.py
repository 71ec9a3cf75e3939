"""ViewerFeed with real hubs of the real demo camera (a real H.264 encoder in-process):
who decides which stream, the reasons, the timeline across switches, and what it holds."""

from __future__ import annotations

import asyncio
import itertools

from gateway.config import DemoSettings
from gateway.feed import ViewerFeed
from gateway.hub import CameraHub
from gateway.media.h264 import NAL_SPS, nal_type, parse_sps
from gateway.sources.demo import DemoSource
from gateway.subscription import OutputFrame
from tests.rig.wait import wait_until

MAIN = DemoSettings(width=320, height=192, fps=30, bitrate_kbps=300, gop_seconds=1.0)
SUB = DemoSettings(width=160, height=96, fps=15, bitrate_kbps=100, gop_seconds=1.0)


def hubs(with_sub: bool = True) -> CameraHub:
    main = CameraHub("cam", lambda: DemoSource(MAIN), linger_s=0.2)  # type: ignore[arg-type]
    if with_sub:
        main.attach_substream(
            CameraHub("cam~sub", lambda: DemoSource(SUB), linger_s=0.2)  # type: ignore[arg-type]
        )
    return main


def width_of(frame: OutputFrame) -> int | None:
    for nal in frame.unit.nals:
        if nal_type(nal) == NAL_SPS:
            return parse_sps(nal).width
    return None


async def read_until_width(feed: ViewerFeed, width: int, out: list[OutputFrame]) -> None:
    """Read the feed until a picture of `width` (then 5 more), keeping them in `out`."""
    async with asyncio.timeout(30):
        while width_of(frame := await feed.get()) != width:
            out.append(frame)
        out.append(frame)
        for _ in range(5):
            out.append(await feed.get())


async def test_views_pins_and_the_path_decide_and_the_timeline_goes_on() -> None:
    main = hubs()
    sub = main.substream
    assert sub is not None
    feed = ViewerFeed(main, view="grid")
    switches: list[tuple[str, str, str]] = []
    feed.on_switch = lambda old, new, why: switches.append((old, new, why))
    frames: list[OutputFrame] = []
    try:
        await read_until_width(feed, SUB.width, frames)
        assert feed.current == "sub" and main.viewers == 0  # the main stream not needed

        feed.set_view("full")
        await read_until_width(feed, MAIN.width, frames)
        feed.allow_main(False, "congestion")  # the path can't carry it
        await read_until_width(feed, SUB.width, frames)
        feed.set_pin("main")  # the person's choice wins over the path
        await read_until_width(feed, MAIN.width, frames)
        feed.set_pin("auto")
        await read_until_width(feed, SUB.width, frames)
        feed.allow_main(True, "recovered")
        await read_until_width(feed, MAIN.width, frames)

        assert switches == [
            ("sub", "main", "view"),
            ("main", "sub", "congestion"),
            ("sub", "main", "pin"),
            ("main", "sub", "pin"),
            ("sub", "main", "recovered"),
        ]
        assert main.switches == {"view": 1, "congestion": 1, "pin": 2, "recovered": 1}
        stamps = [f.timestamp for f in frames]
        assert all(b > a for a, b in itertools.pairwise(stamps))
        # The old stream's subscription is let go after a switch.
        await wait_until(lambda: sub.viewers == 0 and main.viewers == 1, timeout=10)
    finally:
        feed.close()
        await asyncio.gather(main.close(), sub.close())
    assert main.viewers == 0 and sub.viewers == 0


async def test_a_camera_without_a_sub_stream_gets_main_whatever_is_asked() -> None:
    main = hubs(with_sub=False)
    feed = ViewerFeed(main, view="grid", pin="sub")
    try:
        assert feed.wanted() == "main" and feed.streams() == ["main"]
        feed.allow_main(False, "congestion")
        feed.set_view("full")
        frame = await asyncio.wait_for(feed.get(), 30)
        assert width_of(frame) == MAIN.width and feed.current == "main"
        assert main.switches == {}
    finally:
        feed.close()
        await main.close()


async def test_a_keyframe_request_goes_to_the_stream_the_viewer_gets() -> None:
    main = hubs()
    sub = main.substream
    assert sub is not None
    asked: list[str] = []
    main.request_keyframe = lambda: asked.append("main")  # type: ignore[method-assign]
    sub.request_keyframe = lambda: asked.append("sub")  # type: ignore[method-assign]
    feed = ViewerFeed(main, view="grid")
    try:
        await asyncio.wait_for(feed.get(), 30)
        feed.request_keyframe()
        assert asked[-1] == "sub"
    finally:
        feed.close()
        await asyncio.gather(main.close(), sub.close())

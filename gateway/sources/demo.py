"""The built-in demo camera: a live test pattern with a running clock.

The one place camgate ever encodes video (PyAV's libx264), so anyone can see the
product without a camera. Encoding runs in its own thread; finished pictures are
handed to the event loop without blocking it. It has sound too (gateway/sources/
demo_audio.py: `audio: off` in the camera's config turns it off): a beep on every whole
second while a white box flashes for one frame in the picture's bottom right corner, both
stamped with their capture time on the demo's one clock (an A/V sync test signal).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Annotated, Any

from msgspec import Meta

from gateway.config_model import Section
from gateway.media.accessunit import VIDEO_CLOCK_RATE, AccessUnit
from gateway.media.audio import AudioFormat, AudioPacket
from gateway.media.h264 import split_annexb
from gateway.sources.base import SourceError
from gateway.sources.clock_overlay import NEUTRAL_CHROMA, draw_text, fill_rect, text_size
from gateway.sources.demo_audio import DEMO_AUDIO_FORMAT, audio_loop
from gateway.sources.registry import CameraKind, SourceSetup, register

if TYPE_CHECKING:  # PyAV is imported when a demo camera starts, not with the config
    import av

log = logging.getLogger("camgate.demo")


class DemoSettings(Section, frozen=True):
    """A camera's `demo:` block: the test pattern camgate encodes."""

    width: Annotated[int, Meta(ge=64, le=3840)] = 1280
    height: Annotated[int, Meta(ge=64, le=2160)] = 720
    fps: Annotated[int, Meta(ge=1, le=60)] = 30
    bitrate_kbps: Annotated[int, Meta(ge=100, le=20_000)] = 2000
    gop_seconds: Annotated[float, Meta(ge=0.1, le=60)] = 2.0

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2:
            raise ValueError("width and height must be even numbers")


FLASH_LUMA, DARK_LUMA = 235, 16


class DemoSource:
    sdp_parameter_sets: list[bytes] = []
    audio_format: AudioFormat | None = DEMO_AUDIO_FORMAT
    audio_refused: str | None = None

    def __init__(self, settings: DemoSettings | None = None) -> None:
        self.settings = settings or DemoSettings()
        s = self.settings
        self.description = f"demo {s.width}x{s.height}@{s.fps} H.264"
        self._keyframe_requested = threading.Event()
        self._emit_audio: Callable[[AudioPacket], None] | None = None

    def attach_audio(self, emit_audio: Callable[[AudioPacket], None]) -> None:
        """The hub wants the demo's sound (not called when the camera has `audio: off`)."""
        self._emit_audio = emit_audio

    def request_keyframe(self) -> bool:
        self._keyframe_requested.set()
        return True

    async def run(self, emit: Callable[[AccessUnit], None]) -> None:
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        done: asyncio.Future[None] = loop.create_future()

        def finish(exc: BaseException | None) -> None:
            if not done.done():
                done.set_exception(exc) if exc else done.set_result(None)

        # The one clock of picture and sound: capture times are on it.
        start_monotonic, start_wall = time.monotonic(), time.time()

        def worker() -> None:
            try:
                self._encode_loop(
                    stop, lambda au: _call_soon(loop, emit, au), start_monotonic, start_wall
                )
                loop.call_soon_threadsafe(finish, None)
            except Exception as exc:  # reported to the hub as a camera error
                log.exception("demo encoder failed")
                err = SourceError(f"demo encoder failed: {exc}")
                with contextlib.suppress(RuntimeError):  # loop already closed
                    loop.call_soon_threadsafe(finish, err)

        threads = [threading.Thread(target=worker, name="demo-encoder", daemon=True)]
        emit_audio = self._emit_audio
        if emit_audio is not None:

            def sound() -> None:
                try:
                    audio_loop(
                        stop,
                        start_monotonic,
                        start_wall,
                        lambda packet: _call_soon(loop, emit_audio, packet),
                    )
                except Exception:  # the pictures go on without sound
                    log.exception("demo audio failed")

            threads.append(threading.Thread(target=sound, name="demo-audio", daemon=True))
        for thread in threads:
            thread.start()
        try:
            await done
        finally:
            stop.set()
            for thread in threads:
                await asyncio.to_thread(thread.join, 5.0)

    def _encode_loop(
        self,
        stop: threading.Event,
        emit: Callable[[AccessUnit], None],
        start_monotonic: float,
        start_wall: float,
    ) -> None:
        import av
        from av.video.frame import PictureType

        s = self.settings
        encoder = _make_encoder(s)
        pattern = av.open(f"testsrc2=size={s.width}x{s.height}:rate={s.fps}", format="lavfi")
        frames = pattern.decode(video=0)
        scale = max(2, s.height // 60)
        clock_w, _ = text_size("00:00:00", scale)
        clock_x, clock_y = ((s.width - clock_w) // 2) & ~1, (s.height // 6) & ~1
        period = 1.0 / s.fps
        start = start_monotonic
        index = 0
        try:
            while not stop.is_set():
                due = start + index * period
                delay = due - time.monotonic()
                if delay > 0:
                    stop.wait(delay)
                elif delay < -1.0:  # fell far behind (suspended?): skip ahead
                    index = int((time.monotonic() - start) / period)
                    continue
                frame = next(frames)
                self._draw_clock(frame, clock_x, clock_y, scale)
                self._draw_flash(frame, index % s.fps == 0)
                frame.pts = round(index * VIDEO_CLOCK_RATE / s.fps)
                frame.time_base = Fraction(1, VIDEO_CLOCK_RATE)
                # The raw decoder marks every frame I, and libx264 obeys: reset it, so
                # only a requested keyframe is forced.
                forced = self._keyframe_requested.is_set()
                self._keyframe_requested.clear()
                frame.pict_type = PictureType.I if forced else PictureType.NONE
                for packet in encoder.encode(frame):
                    emit(
                        AccessUnit(
                            tuple(split_annexb(bytes(packet))),
                            int(packet.pts or 0),
                            bool(packet.is_keyframe),
                            time.monotonic(),
                            start_wall + int(packet.pts or 0) / VIDEO_CLOCK_RATE,
                        )
                    )
                index += 1
        finally:
            pattern.close()

    @staticmethod
    def _draw_flash(frame: av.VideoFrame, flash: bool) -> None:
        """A box in the bottom right corner: white on whole seconds (with the beep),
        black otherwise."""
        luma, cb, cr = frame.planes
        w, h = (frame.width // 5) & ~1, (frame.height // 5) & ~1
        x, y = frame.width - w, frame.height - h
        fill_rect(memoryview(luma), luma.line_size, x, y, w, h, FLASH_LUMA if flash else DARK_LUMA)
        for chroma in (cb, cr):
            fill_rect(memoryview(chroma), chroma.line_size, x // 2, y // 2, w // 2, h // 2, 128)

    @staticmethod
    def _draw_clock(frame: av.VideoFrame, x: int, y: int, scale: int) -> None:
        luma, cb, cr = frame.planes
        text = time.strftime("%H:%M:%S")
        draw_text(memoryview(luma), luma.line_size, x, y, text, scale)
        width, height = text_size(text, scale)
        for chroma in (cb, cr):  # a grey box: no colour bleeding into the digits
            fill_rect(
                memoryview(chroma),
                chroma.line_size,
                x // 2,
                y // 2,
                (width + 1) // 2,
                (height + 1) // 2,
                NEUTRAL_CHROMA,
            )


def _call_soon(loop: asyncio.AbstractEventLoop, emit: Callable[[Any], None], item: object) -> None:
    loop.call_soon_threadsafe(emit, item)


def _make_encoder(s: DemoSettings) -> av.VideoCodecContext:
    import av

    encoder = av.CodecContext.create("libx264", "w")
    encoder.width = s.width
    encoder.height = s.height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, VIDEO_CLOCK_RATE)
    encoder.framerate = Fraction(s.fps, 1)
    encoder.bit_rate = s.bitrate_kbps * 1000
    encoder.gop_size = max(1, round(s.gop_seconds * s.fps))
    encoder.max_b_frames = 0  # WebRTC carries no B-frames
    # No profile option: ultrafast makes Constrained Baseline (every browser decodes
    # it), and PyAV 14 (aiortc 1.12's) refuses a "profile" in the options.
    encoder.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        # Forced keyframes (a viewer asked for one) must be IDRs, or a new
        # decoder cannot start there; SPS/PPS repeated before each IDR.
        "forced-idr": "1",
        "x264-params": f"repeat-headers=1:keyint={encoder.gop_size}:min-keyint={encoder.gop_size}"
        ":scenecut=0:bframes=0",
    }
    encoder.open()
    return encoder


def _build(setup: SourceSetup) -> DemoSource:
    return DemoSource(DEMO.settings_of(setup.camera))


DEMO = register(
    CameraKind(
        name="demo",
        model="Demo camera",
        settings=DemoSettings,
        build=_build,
        describe=lambda camera: "demo",
        takes_source=lambda source: source == "demo",
        source_hint="'demo'",
    )
)

"""A test camera with G.711 sound: the demo's pictures, and a tone encoded by PyAV's
pcm_mulaw / pcm_alaw encoders in 20 ms packets, each kept as emitted (passthrough checks:
what reaches a viewer must be these bytes). `source: g711-test-pcmu` / `g711-test-pcma`."""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
import time
from collections.abc import Callable, Iterator
from fractions import Fraction

import av

from gateway.media.accessunit import AccessUnit
from gateway.media.audio import AudioFormat, AudioPacket
from gateway.sources import registry
from gateway.sources.demo import DemoSettings, DemoSource
from gateway.sources.registry import CameraKind, SourceSetup

RATE = 8000
PACKET_SAMPLES = 160  # 20 ms
ENCODERS = {"PCMU": "pcm_mulaw", "PCMA": "pcm_alaw"}


class G711Camera:
    sdp_parameter_sets: list[bytes] = []
    audio_refused: str | None = None

    def __init__(self, codec: str) -> None:
        self.description = f"G.711 test camera ({codec})"
        self.audio_format: AudioFormat | None = AudioFormat(codec, RATE, 1)
        self.video = DemoSource(DemoSettings(width=160, height=120, fps=10, bitrate_kbps=200))
        self.emitted: list[bytes] = []
        self._emit_audio: Callable[[AudioPacket], None] | None = None

    def attach_audio(self, emit_audio: Callable[[AudioPacket], None]) -> None:
        self._emit_audio = emit_audio

    def request_keyframe(self) -> bool:
        return self.video.request_keyframe()

    async def run(self, emit: Callable[[AccessUnit], None]) -> None:
        sound = asyncio.create_task(self._sound())
        try:
            await self.video.run(emit)
        finally:
            sound.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sound

    async def _sound(self) -> None:
        assert self.audio_format is not None
        encoder = av.CodecContext.create(ENCODERS[self.audio_format.codec], "w")
        encoder.sample_rate = RATE
        encoder.layout = "mono"
        encoder.format = "s16"
        encoder.time_base = Fraction(1, RATE)
        encoder.open()
        start = time.monotonic()
        n = 0  # the loudness steps with n: no two packets are alike (for a while)
        while True:
            await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - time.monotonic()))
            first = n * PACKET_SAMPLES
            loudness = 4000 + 16 * (n % 256)
            pcm = struct.pack(
                f"<{PACKET_SAMPLES}h",
                *(
                    round(loudness * math.sin(2 * math.pi * 440 * (first + i) / RATE))
                    for i in range(PACKET_SAMPLES)
                ),
            )
            frame = av.AudioFrame(format="s16", layout="mono", samples=PACKET_SAMPLES)
            frame.planes[0].update(pcm)
            frame.sample_rate = RATE
            frame.pts = first
            for packet in encoder.encode(frame):
                payload = bytes(packet)
                self.emitted.append(payload)
                if self._emit_audio is not None:
                    self._emit_audio(AudioPacket(payload, first, time.monotonic()))
            n += 1


CAMERAS: list[G711Camera] = []


def _build(setup: SourceSetup) -> G711Camera:
    source = setup.camera.source or ""
    camera = G711Camera("PCMA" if source.endswith("pcma") else "PCMU")
    CAMERAS.append(camera)
    return camera


KIND = CameraKind(
    name="g711test",
    model="G.711 test camera",
    build=_build,  # type: ignore[arg-type]
    describe=lambda camera: "G.711 test camera",
    takes_source=lambda source: source.startswith("g711-test-"),
    source_hint="'g711-test-pcmu'",
)


@contextlib.contextmanager
def registered() -> Iterator[list[G711Camera]]:
    """The kind is known while inside (and no longer after: the built-in list stays true)."""
    registry.register(KIND)
    CAMERAS.clear()
    try:
        yield CAMERAS
    finally:
        registry._KINDS.pop(KIND.name, None)
        CAMERAS.clear()

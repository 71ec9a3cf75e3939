"""PCM to Opus for WebRTC: the one encoder setting camgate uses for every sound it makes
(AAC cameras' audio, the Pi camera's microphone).

Opus in WebRTC is always declared 48000/2 (RFC 7587); a mono source is encoded as mono
packets all the same (every Opus decoder plays them on both channels), which halves
the encoder's work for the usual single-microphone camera. `application=audio`: a
camera hears a room (voices, but also alarms, dogs, glass), not a headset, so the
general-audio mode fits better than `voip`, whose speech emphasis colours the rest.
PyAV is imported when an encoder is made, not with this module (start-up on a Pi).
"""

from __future__ import annotations

from typing import Any

OPUS_RATE = 48_000
OPUS_FRAME_SAMPLES = 960  # 20 ms: WebRTC's usual packet, 50 packets a second
OPUS_APPLICATION = "audio"
OPUS_BITRATES = {1: 32_000, 2: 48_000}  # bits per second: transparent enough for a camera


class OpusEncoder:
    """Any PCM frames in (any rate, format, layout), 20 ms Opus packets out.

    Not thread-safe: one thread owns it. `encode()` returns the packets completed by
    the frame (zero or more): the resampler keeps the remainder below 960 samples."""

    def __init__(self, channels: int) -> None:
        import av

        self.channels = 2 if channels >= 2 else 1
        layout = "stereo" if self.channels == 2 else "mono"
        self._av = av
        self._layout = layout
        self._resampler = self._new_resampler()
        self._input: tuple[str, str, int] | None = None  # what the resampler was set up for
        codec: Any = av.CodecContext.create("libopus", "w")
        codec.sample_rate = OPUS_RATE
        codec.layout = layout
        codec.format = "s16"
        codec.bit_rate = OPUS_BITRATES[self.channels]
        codec.options = {"application": OPUS_APPLICATION, "frame_duration": "20"}
        codec.open()
        self._codec = codec

    def _new_resampler(self) -> Any:
        return self._av.AudioResampler(
            format="s16", layout=self._layout, rate=OPUS_RATE, frame_size=OPUS_FRAME_SAMPLES
        )

    def encode(self, frame: Any) -> list[bytes]:
        """The Opus packets (20 ms each, in order) that `frame` completes."""
        packets: list[bytes] = []
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        if shape != self._input:  # the resampler takes one input shape for its life
            if self._input is not None:
                self.restart()
            self._input = shape
        for pcm in self._resampler.resample(frame):
            pcm.pts = None  # timing is the caller's: it counts samples
            packets.extend(bytes(p) for p in self._codec.encode(pcm))
        return packets

    def restart(self) -> None:
        """Forget the samples waiting for a whole frame (before a jump in time)."""
        self._resampler = self._new_resampler()

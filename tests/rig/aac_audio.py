"""Real AAC and real Opus for audio tests: a sine through PyAV's own AAC encoder (as a
camera's would make it: raw access units, the AudioSpecificConfig out of band) and
camgate's Opus decoded back by libopus to check what came out."""

from __future__ import annotations

import math
from dataclasses import dataclass

import av
import numpy as np

from gateway.media.audio import AudioFormat, AudioPacket


@dataclass(frozen=True)
class AacStream:
    format: AudioFormat
    units: list[bytes]  # raw access units, 1024 samples each
    samples_per_unit: int = 1024

    def packets(
        self, *, start: int = 0, capture: float | None = None, arrival: float = 0.0
    ) -> list[AudioPacket]:
        """The units as a camera's packets: timestamps on the AAC clock from `start`,
        `capture` (if given) advancing with them."""
        rate = self.format.clock_rate
        out = []
        for n, unit in enumerate(self.units):
            timestamp = start + n * self.samples_per_unit
            when = None if capture is None else capture + n * self.samples_per_unit / rate
            out.append(AudioPacket(unit, timestamp, arrival, when))
        return out


def sine(rate: int, seconds: float, frequency: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    wave = (0.5 * np.sin(2 * math.pi * frequency * t)).astype(np.float32)
    return np.tile(wave, (channels, 1))


def aac_sine(
    rate: int = 16000, channels: int = 1, seconds: float = 2.0, frequency: float = 440.0
) -> AacStream:
    encoder = av.CodecContext.create("aac", "w")
    encoder.sample_rate = rate
    encoder.layout = "stereo" if channels == 2 else "mono"
    encoder.format = "fltp"
    encoder.bit_rate = 32000 * channels
    encoder.open()
    pcm = sine(rate, seconds, frequency, channels)
    units: list[bytes] = []
    for start in range(0, pcm.shape[1], 1024):
        chunk = pcm[:, start : start + 1024]
        if chunk.shape[1] < 1024:
            chunk = np.pad(chunk, ((0, 0), (0, 1024 - chunk.shape[1])))
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(chunk), format="fltp", layout=encoder.layout.name
        )
        frame.sample_rate = rate
        frame.pts = start
        units.extend(bytes(p) for p in encoder.encode(frame))
    units.extend(bytes(p) for p in encoder.encode(None))
    config = bytes(encoder.extradata)
    return AacStream(AudioFormat("AAC", rate, channels, config), units)


def decode_opus(payloads: list[bytes]) -> np.ndarray:
    """Opus packets -> float samples at 48 kHz (the first channel)."""
    decoder = av.CodecContext.create("libopus", "r")
    decoder.sample_rate = 48000
    decoder.layout = "stereo"
    chunks = []
    for payload in payloads:
        for frame in decoder.decode(av.Packet(payload)):
            array = frame.to_ndarray()
            first = array[0] if frame.format.is_planar else array[0][:: frame.layout.nb_channels]
            scale = 32768.0 if first.dtype == np.int16 else 1.0
            chunks.append(first.astype(np.float32) / scale)
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def peak_frequency(samples: np.ndarray, rate: int = 48000) -> float:
    """The strongest frequency in the samples (Hz)."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum[1:])) + 1])

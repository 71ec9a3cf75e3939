"""CPU cost of a camera's sound made for browsers: AAC -> Opus (gateway/audio/transcode.py,
once per AAC camera while someone listens) and PCM -> Opus (the Pi camera's microphone).

    python -m bench.aac_opus [--seconds 60] [--out FILE.json]

The real transcoder (its thread, its queue, the event loop's deliveries) is fed real AAC
(PyAV's encoder, a speech-band chirp so the codecs work as on real sound) as fast as it
takes it; the process's CPU time over the audio's duration is the share of one core it
would use in real time. Best of RUNS runs (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

from gateway.audio.transcode import AacToOpus
from gateway.media.audio import AudioFormat, AudioPacket
from gateway.media.opus_encode import OpusEncoder

RUNS = 5
CASES = ((16000, 1), (48000, 2), (48000, 1))


def chirp(rate: int, channels: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    frequency = 200 + 1800 * (t % 2.0) / 2.0  # sweeps 200 Hz - 2 kHz every 2 s
    wave = 0.3 * np.sin(2 * np.pi * np.cumsum(frequency) / rate) + 0.02 * np.random.randn(len(t))
    return np.tile(wave.astype(np.float32), (channels, 1))


def aac_units(rate: int, channels: int, seconds: float) -> tuple[AudioFormat, list[bytes]]:
    encoder: Any = av.CodecContext.create("aac", "w")
    encoder.sample_rate, encoder.format = rate, "fltp"
    encoder.layout = "stereo" if channels == 2 else "mono"
    encoder.bit_rate = 32000 * channels
    encoder.open()
    pcm, units = chirp(rate, channels, seconds), []
    for start in range(0, pcm.shape[1] - 1023, 1024):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm[:, start : start + 1024]),
            format="fltp",
            layout=encoder.layout.name,
        )
        frame.sample_rate, frame.pts = rate, start
        units.extend(bytes(p) for p in encoder.encode(frame))
    return AudioFormat("AAC", rate, channels, bytes(encoder.extradata)), units


async def transcode_cpu(audio_format: AudioFormat, units: list[bytes]) -> float:
    """CPU seconds of the process to transcode `units`."""
    out: list[AudioPacket] = []
    transcoder = AacToOpus(audio_format, out.append, camera="bench")
    begin = time.process_time()
    for n, unit in enumerate(units, 1):
        transcoder.feed(AudioPacket(unit, n * 1024, time.monotonic(), None))
        if n % 32 == 0:
            while transcoder.units_in < n:
                await asyncio.sleep(0.001)
    while transcoder.units_in < len(units) or len(out) < transcoder.packets_out:
        await asyncio.sleep(0.001)
    used = time.process_time() - begin
    transcoder.close()
    transcoder.join()
    assert transcoder.units_dropped_late == 0 and transcoder.units_undecodable == 0
    return used


def microphone_cpu(rate: int, channels: int, seconds: float) -> float:
    """CPU seconds to encode `seconds` of s16 PCM as the microphone does."""
    pcm = (chirp(rate, channels, seconds) * 32767).astype(np.int16)
    layout = "stereo" if channels == 2 else "mono"
    encoder = OpusEncoder(channels)
    period = rate // 50  # ALSA hands over periods of ~20 ms
    frames = []
    for start in range(0, pcm.shape[1] - period + 1, period):
        chunk = np.ascontiguousarray(pcm[:, start : start + period].T.reshape(1, -1))
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout=layout)
        frame.sample_rate = rate
        frames.append(frame)
    begin = time.process_time()
    for frame in frames:
        encoder.encode(frame)
    return time.process_time() - begin


async def run(seconds: float) -> dict[str, Any]:
    results: dict[str, Any] = {"seconds_of_audio": seconds, "runs": RUNS, "cases": []}
    for rate, channels in CASES:
        audio_format, units = aac_units(rate, channels, seconds)
        duration = len(units) * 1024 / rate
        best = min([await transcode_cpu(audio_format, units) for _ in range(RUNS)])
        mic = min(microphone_cpu(rate, channels, seconds) for _ in range(RUNS))
        results["cases"].append(
            {
                "input": audio_format.describe(),
                "aac_to_opus_core_percent": round(100 * best / duration, 2),
                "pcm_to_opus_core_percent": round(100 * mic / seconds, 2),
            }
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.seconds))
    print(f"{'input':<26} {'AAC->Opus':>10} {'PCM->Opus':>10}   (% of one core)")
    for case in results["cases"]:
        print(
            f"{case['input']:<26} {case['aac_to_opus_core_percent']:>9.2f}% "
            f"{case['pcm_to_opus_core_percent']:>9.2f}%"
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

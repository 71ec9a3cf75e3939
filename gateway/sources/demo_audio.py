"""The demo camera's sound: a soft beep once a second, on the picture's flash.

The beep (and the white box the picture shows for one frame) start on every whole second
of the demo's clock, and both carry their capture time on that clock: an A/V sync test
signal. Between beeps a faint hum, so that a listener always hears something. The signal
repeats every second, so one second of Opus packets is encoded once at start (PyAV's
libopus, 48 kHz mono, 20 ms packets) and then replayed: next to no CPU on a Pi.
"""

from __future__ import annotations

import math
import struct
import threading
import time
from collections.abc import Callable
from fractions import Fraction

from gateway.media.audio import OPUS_CLOCK_RATE, AudioFormat, AudioPacket

DEMO_AUDIO_FORMAT = AudioFormat("OPUS", OPUS_CLOCK_RATE, 1)
PACKET_SAMPLES = OPUS_CLOCK_RATE // 50  # 20 ms
PACKETS_PER_SECOND = OPUS_CLOCK_RATE // PACKET_SAMPLES
BEEP_SECONDS = 0.1
BEEP_HZ = 880.0
BEEP_AMPLITUDE = 0.25  # soft
HUM_HZ = 220.0
HUM_AMPLITUDE = 0.01  # faint
BITRATE = 32_000


def sample_at(t: float) -> float:
    """The demo's sound at `t` seconds (-1..1); whole seconds start a beep."""
    phase = t % 1.0
    value = HUM_AMPLITUDE * math.sin(2 * math.pi * HUM_HZ * t)
    if phase < BEEP_SECONDS:
        fade = min(1.0, phase / 0.005, (BEEP_SECONDS - phase) / 0.005)  # no clicks
        value += BEEP_AMPLITUDE * fade * math.sin(2 * math.pi * BEEP_HZ * phase)
    return value


def encode_one_second() -> list[bytes]:
    """The Opus packets of one second of the signal, packet 0 starting on the beep."""
    import av

    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = OPUS_CLOCK_RATE
    encoder.layout = "mono"
    encoder.format = "s16"
    encoder.bit_rate = BITRATE
    encoder.time_base = Fraction(1, OPUS_CLOCK_RATE)
    encoder.open()
    # The encoder's look-ahead delays its output by `delay` samples: feed the signal
    # that much early so the decoded beep starts on the second.
    delay = int(getattr(encoder, "delay", 0) or 312)
    packets: list[bytes] = []
    seconds = 3  # the last second is encoded with a warmed-up encoder state
    for n in range(seconds * PACKETS_PER_SECOND):
        first = n * PACKET_SAMPLES + delay
        pcm = struct.pack(
            f"<{PACKET_SAMPLES}h",
            *(
                round(32767 * sample_at((first + i) / OPUS_CLOCK_RATE))
                for i in range(PACKET_SAMPLES)
            ),
        )
        frame = av.AudioFrame(format="s16", layout="mono", samples=PACKET_SAMPLES)
        frame.planes[0].update(pcm)
        frame.sample_rate = OPUS_CLOCK_RATE
        frame.pts = n * PACKET_SAMPLES
        frame.time_base = Fraction(1, OPUS_CLOCK_RATE)
        packets += [bytes(p) for p in encoder.encode(frame)]
    return packets[-PACKETS_PER_SECOND:]


def audio_loop(
    stop: threading.Event,
    start_monotonic: float,
    start_wall: float,
    emit: Callable[[AudioPacket], None],
) -> None:
    """Emit one packet every 20 ms, each once it has been "recorded" (at its end)."""
    second = encode_one_second()
    period = PACKET_SAMPLES / OPUS_CLOCK_RATE
    n = 0
    while not stop.is_set():
        ready = start_monotonic + (n + 1) * period
        delay = ready - time.monotonic()
        if delay > 0:
            stop.wait(delay)
            continue
        if delay < -1.0:  # fell far behind (suspended?): skip ahead
            n = int((time.monotonic() - start_monotonic) / period)
            continue
        emit(
            AudioPacket(
                second[n % PACKETS_PER_SECOND],
                n * PACKET_SAMPLES,
                time.monotonic(),
                start_wall + n * period,
            )
        )
        n += 1

"""AAC to Opus, once per camera, on a thread of its own (browsers take no AAC over WebRTC).

The AudioFanout makes one of these when the first listener of an AAC camera hears a
packet and closes it when the last one leaves, so a camera nobody listens to costs
nothing. The event loop never waits on it: feed() queues the access unit (bounded;
when the thread falls behind the oldest is dropped and counted) and the Opus packets
come back through loop.call_soon_threadsafe.

Timing: output timestamps are on Opus's 48 kHz clock, scaled from the camera's and
then counted in samples, so they are continuous (960 a packet) and keep the picture's
pace. A few lost access units (up to MAX_FILL_S) are filled with silence, which keeps
the count true; a longer gap (a camera hiccup, a reconnect) resyncs to the camera's
timestamp. `capture` (the camera's wall clock, for A/V sync) is carried over,
interpolated for every output packet from the input's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from gateway.audio.fanout import OPUS_STEREO
from gateway.media.aac_config import parse_aac_config
from gateway.media.audio import AAC, OPUS_CLOCK_RATE, AudioFormat, AudioPacket
from gateway.media.opus_encode import OPUS_FRAME_SAMPLES, OpusEncoder

log = logging.getLogger("camgate.audio")

QUEUE_UNITS = 64  # access units waiting for the thread: 1.4 s of 48 kHz AAC, 4 s of 16 kHz
MAX_FILL_S = 0.1  # a gap up to this is filled with silence; a longer one resyncs
STOP_WAIT_S = 5.0


class AacToOpus:
    """One camera's AAC access units in, Opus packets (48 kHz, 20 ms) out."""

    output_format = OPUS_STEREO

    def __init__(
        self,
        camera_format: AudioFormat,
        emit: Callable[[AudioPacket], None],
        *,
        camera: str = "",
    ) -> None:
        if camera_format.codec != AAC:
            raise ValueError(f"{camera_format.describe()}: not AAC")
        try:
            config = parse_aac_config(camera_format.config)
        except ValueError as exc:
            raise ValueError(f"{camera_format.describe()}: {exc}") from None
        self.camera = camera
        self.input_format = camera_format
        self._emit = emit
        self._loop = asyncio.get_running_loop()
        self._decoder = _open_decoder(camera_format.config, config.name)
        self._encoder: OpusEncoder | None = None  # made with the first decoded frame
        self._queue: deque[AudioPacket] = deque(maxlen=QUEUE_UNITS)
        self._wake = threading.Condition()
        self._closed = False
        # The timeline (touched by the thread only).
        self._expected: int | None = None  # the next access unit's timestamp if none is lost
        self._base = 0  # 48 kHz timestamp of the first sample since the last resync
        self._fed = 0.0  # 48 kHz samples given to the encoder since then
        self._sent = 0  # Opus packets made since then
        self._anchor: tuple[float, float] | None = None  # (48 kHz position, capture)
        # Counters (read from anywhere).
        self.units_in = 0
        self.units_dropped_late = 0  # the thread fell behind: the oldest were dropped
        self.units_undecodable = 0
        self.units_overlapping = 0  # repeated or out of order: already played
        self.packets_out = 0
        self.resyncs = 0
        self._thread = threading.Thread(
            target=self._work, name=f"aac-opus {camera}".strip(), daemon=True
        )
        self._thread.start()

    # --- the event loop's side ----------------------------------------------------------

    def feed(self, packet: AudioPacket) -> None:
        with self._wake:
            if len(self._queue) == QUEUE_UNITS:
                self.units_dropped_late += 1
            self._queue.append(packet)
            self._wake.notify()

    def close(self) -> None:
        """Stop the thread (it ends after the unit at hand); returns at once."""
        with self._wake:
            self._closed = True
            self._queue.clear()
            self._wake.notify()

    def join(self, timeout: float = STOP_WAIT_S) -> bool:
        """Wait for the thread to end (after close()); True if it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _deliver(self, packet: AudioPacket) -> None:
        if not self._closed:  # nothing reaches listeners after close()
            self._emit(packet)

    # --- the thread -----------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                packet = self._queue.popleft()
            try:
                self._transcode(packet)
            except Exception:  # a libav surprise must not end the camera's sound for good
                log.exception("camera %s: AAC to Opus failed on one access unit", self.camera)

    def _transcode(self, packet: AudioPacket) -> None:
        self.units_in += 1
        av = self._decoder.av
        try:
            frames = self._decoder.codec.decode(av.Packet(packet.payload))
        except av.error.FFmpegError as exc:
            self.units_undecodable += 1
            log.warning(
                "camera %s: dropped an AAC access unit that does not decode (%s)",
                self.camera,
                exc.strerror or exc,
            )
            return
        if not frames:
            return
        samples = sum(f.samples for f in frames)
        decoded_rate = frames[0].sample_rate
        encoder = self._encoder_for(frames[0])
        if not self._place(packet, encoder, frames[0]):
            self.units_overlapping += 1
            return
        for frame in frames:
            self._encode(encoder, frame, packet.arrival)
        clock = self.input_format.clock_rate
        self._expected = packet.timestamp + round(samples * clock / decoded_rate)

    def _encoder_for(self, frame: Any) -> OpusEncoder:
        if self._encoder is None:
            self._encoder = OpusEncoder(frame.layout.nb_channels)
        return self._encoder

    def _place(self, packet: AudioPacket, encoder: OpusEncoder, frame: Any) -> bool:
        """Where this unit's first sample goes on the 48 kHz timeline; False when it
        lies within what was already sent (a repeated or reordered unit): skip it."""
        clock = self.input_format.clock_rate
        gap = None if self._expected is None else packet.timestamp - self._expected
        if gap is None or abs(gap) > MAX_FILL_S * clock:
            if gap is not None:
                self.resyncs += 1
            encoder.restart()
            self._base = packet.timestamp * OPUS_CLOCK_RATE // clock
            self._fed = 0.0
            self._sent = 0
            self._anchor = None
        elif gap > 0:  # lost units: silence keeps the sample count (and the sync) true
            missing = round(gap * frame.sample_rate / clock)
            if missing:
                self._encode(encoder, _silence_like(frame, missing), packet.arrival)
        elif gap < 0 and -gap * frame.sample_rate > frame.samples * clock // 2:
            return False  # (a smaller overlap is a camera's rounding: carry on)
        if packet.capture is not None:
            self._anchor = (self._base + self._fed, packet.capture)
        return True

    def _encode(self, encoder: OpusEncoder, frame: Any, arrival: float) -> None:
        opus = encoder.encode(frame)
        self._fed += frame.samples * OPUS_CLOCK_RATE / frame.sample_rate
        for payload in opus:
            timestamp = self._base + self._sent * OPUS_FRAME_SAMPLES
            self._sent += 1
            capture = None
            if self._anchor is not None:
                position, anchor_capture = self._anchor
                capture = anchor_capture + (timestamp - position) / OPUS_CLOCK_RATE
            self.packets_out += 1
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self._loop.call_soon_threadsafe(
                    self._deliver, AudioPacket(payload, timestamp, arrival, capture)
                )


class _Decoder:
    def __init__(self, av: Any, codec: Any) -> None:
        self.av = av
        self.codec = codec


def _open_decoder(config: bytes, name: str) -> _Decoder:
    import av

    codec: Any = av.CodecContext.create("aac", "r")
    codec.extradata = config
    try:
        codec.open()
    except av.error.FFmpegError as exc:
        raise ValueError(f"{name}: the decoder refuses its AudioSpecificConfig ({exc})") from None
    return _Decoder(av, codec)


def _silence_like(frame: Any, samples: int) -> Any:
    import av

    silence = av.AudioFrame(format=frame.format.name, layout=frame.layout.name, samples=samples)
    silence.sample_rate = frame.sample_rate
    for plane in silence.planes:
        plane.update(bytes(plane.buffer_size))
    return silence


class AacToOpusFactory:
    """The TranscoderFactory of one camera (its name goes into the log lines)."""

    def __init__(self, camera: str) -> None:
        self.camera = camera

    def __call__(
        self, camera_format: AudioFormat, emit: Callable[[AudioPacket], None]
    ) -> AacToOpus:
        return AacToOpus(camera_format, emit, camera=self.camera)

    def check(self, camera_format: AudioFormat) -> None:
        """ValueError (saying why) if `camera_format` could never be transcoded: its
        AudioSpecificConfig is unusable or the decoder refuses it. Cheap: no thread."""
        if camera_format.codec != AAC:
            raise ValueError(f"{camera_format.describe()}: not AAC")
        try:
            config = parse_aac_config(camera_format.config)
        except ValueError as exc:
            raise ValueError(f"{camera_format.describe()}: {exc}") from None
        _open_decoder(camera_format.config, config.name)  # then dropped


def aac_to_opus(camera: str) -> AacToOpusFactory:
    """The TranscoderFactory of one camera (its name goes into the log lines)."""
    return AacToOpusFactory(camera)

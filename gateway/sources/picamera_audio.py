"""The Pi camera's optional microphone: ALSA through PyAV, Opus 48 kHz in 20 ms packets.

It records only while someone listens: the camera's audio fan-out says when listeners
come and go (`set_listening`), and the device is closed LINGER_S after the last one
left (a listener who reconnects at once finds it still open). When the camera starts
(and after a failure) the device is opened once and closed again, so the camera object
says at once whether the microphone works. The thread of its own: ALSA reads block (one
period at a time), the Opus encoder costs a little CPU, and neither may hold the event
loop. Packets cross to the loop with call_soon_threadsafe. Capture times come from the
same CaptureClock arithmetic as the pictures' (Unix seconds), so a browser keeps them in
sync; RTP timestamps run on across a closed spell as if the device had recorded. A
microphone that is missing or busy never stops the picture: `refused` says why, and the
thread tries again every RETRY_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from msgspec import Meta

from gateway.config_model import Section
from gateway.media.audio import OPUS_CLOCK_RATE, AudioFormat, AudioPacket
from gateway.media.opus_encode import OPUS_FRAME_SAMPLES, OpusEncoder
from gateway.sources.capture_clock import CaptureClock

log = logging.getLogger("camgate.picamera")

RETRY_S = 10.0  # a missing or busy microphone is tried again this often
LINGER_S = 5.0  # the device stays open this long after the last listener left
STOP_WAIT_S = 5.0
# What the microphone's packets are, as WebRTC declares Opus (mono packets included).
MICROPHONE_FORMAT = AudioFormat("OPUS", OPUS_CLOCK_RATE, 2)


class MicrophoneSettings(Section, frozen=True):
    """A Pi camera's `audio:` block: a microphone on the Pi (USB or I2S), through ALSA."""

    device: Annotated[str, Meta(min_length=1, max_length=200)]  # e.g. hw:1,0 (`arecord -l`)
    rate: Literal[8000, 16000, 22050, 24000, 32000, 44100, 48000] = 48000  # what it records at
    channels: Annotated[int, Meta(ge=1, le=2)] = 1


# settings -> an opened PyAV input container with one audio stream (blocking).
InputOpener = Callable[[MicrophoneSettings], Any]


def open_alsa(settings: MicrophoneSettings) -> Any:
    import av

    options = {"sample_rate": str(settings.rate), "channels": str(settings.channels)}
    return av.open(settings.device, format="alsa", options=options)


def open_error(settings: MicrophoneSettings, exc: BaseException) -> str:
    """Why the microphone did not open, for the camera object (ALSA's own errors, as
    FFmpeg passes them on, are bare: "Input/output error")."""
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return (
        f"microphone {settings.device} did not open ({reason}): is it connected "
        "(`arecord -l` lists it), not used by another program, and is camgate in the "
        "audio group?"
    )


class Microphone:
    """The capture thread and what the camera object says about it."""

    def __init__(
        self,
        settings: MicrophoneSettings,
        open_input: InputOpener = open_alsa,
        *,
        linger_s: float = LINGER_S,
    ) -> None:
        self.settings = settings
        self._open_input = open_input
        self.linger_s = linger_s
        self.format: AudioFormat | None = None  # set once the device opened
        self.refused: str | None = None
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._unheard_since = 0.0  # monotonic: when the last listener left
        self._wake = threading.Event()  # stop or listening changed
        self._thread: threading.Thread | None = None
        self._next_timestamp = 0  # RTP timestamps run on across closed spells
        self._closed_at: float | None = None
        self.packets_out = 0
        self.opened = 0  # times the device was opened (checks included)

    def set_listening(self, listening: bool) -> None:
        """Someone listens (the device opens) or nobody does (it closes after linger_s)."""
        if listening == self._listening.is_set():
            return
        if listening:
            self._listening.set()
        else:
            self._unheard_since = time.monotonic()
            self._listening.clear()
        self._wake.set()

    def start(self, emit: Callable[[AudioPacket], None]) -> None:
        loop = asyncio.get_running_loop()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._work, args=(loop, emit), name="picamera-microphone", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        """End the thread (it finishes the ALSA period at hand) and wait for it."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, STOP_WAIT_S)
            if thread.is_alive():
                log.error("Pi camera microphone: the capture thread did not stop")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _work(self, loop: asyncio.AbstractEventLoop, emit: Callable[[AudioPacket], None]) -> None:
        def deliver(packet: AudioPacket) -> None:
            if not self._stop.is_set():
                emit(packet)

        def send(packet: AudioPacket) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(deliver, packet)

        while not self._stop.is_set():
            if self.format is not None:  # it works: open it when someone listens
                self._wait_for_listeners()
                if self._stop.is_set():
                    return
            try:
                container = self._open_input(self.settings)
            except Exception as exc:
                self.format, self.refused = None, open_error(self.settings, exc)
                log.warning("Pi camera: %s; trying again in %g s", self.refused, RETRY_S)
                self._stop.wait(RETRY_S)
                continue
            self.opened += 1
            try:
                self.format, self.refused = MICROPHONE_FORMAT, None
                if self._listening.is_set():
                    log.info("Pi camera microphone %s recording", self.settings.device)
                    self._capture(container, send)
                    log.info("Pi camera microphone %s closed: nobody listens", self.settings.device)
            except Exception as exc:
                self.format = None
                self.refused = f"microphone {self.settings.device} stopped: {exc}"
                log.warning("Pi camera: %s; trying again in %g s", self.refused, RETRY_S)
                self._stop.wait(RETRY_S)
            finally:
                container.close()

    def _wait_for_listeners(self) -> None:
        while True:
            self._wake.clear()
            if self._stop.is_set() or self._listening.is_set():
                return
            self._wake.wait()

    def _lingered(self, now: float) -> bool:
        """Nobody has listened for linger_s: time to close the device."""
        return not self._listening.is_set() and now - self._unheard_since >= self.linger_s

    def _capture(self, container: Any, send: Callable[[AudioPacket], None]) -> None:
        """Record until stopped or nobody listens (returns), or the device fails (raises)."""
        stream = container.streams.audio[0]
        encoder = OpusEncoder(self.settings.channels)
        clock = CaptureClock()
        read = 0.0  # samples (at 48 kHz) read since the device opened
        sent = 0
        first = self._first_timestamp(time.monotonic())
        try:
            for packet in container.demux(stream):
                now = time.monotonic()
                if self._stop.is_set() or self._lingered(now):
                    return
                for frame in packet.decode():
                    read += frame.samples * OPUS_CLOCK_RATE / frame.sample_rate
                    clock.observe(read / OPUS_CLOCK_RATE, now)  # this frame just came in
                    for payload in encoder.encode(frame):
                        position = sent * OPUS_FRAME_SAMPLES
                        sent += 1
                        capture = clock.wall(position / OPUS_CLOCK_RATE)
                        self.packets_out += 1
                        send(AudioPacket(payload, first + position, now, capture))
            raise RuntimeError("the device stopped sending")
        finally:
            self._next_timestamp = first + sent * OPUS_FRAME_SAMPLES
            self._closed_at = time.monotonic()

    def _first_timestamp(self, now: float) -> int:
        """Where a new recording starts: on from the last one by the time it was closed
        (in whole packets), so listeners see one timeline."""
        if self._closed_at is None:
            return self._next_timestamp
        gap = round((now - self._closed_at) * OPUS_CLOCK_RATE / OPUS_FRAME_SAMPLES)
        return self._next_timestamp + max(gap, 0) * OPUS_FRAME_SAMPLES

"""A camera's sound, shared by every listener: one upstream, no per-listener work.

Passthrough codecs (PCMU, PCMA, Opus) go to listeners as the camera sent them. AAC,
which browsers don't take over WebRTC, is transcoded to Opus once per camera, and only
while someone listens (the transcoder starts with the first listener and stops with
the last). Other codecs are refused: the camera object says which, video goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from gateway.audio.subscription import AudioSubscription
from gateway.media.audio import AAC, OPUS_CLOCK_RATE, AudioFormat, AudioPacket
from gateway.sources.base import AudioCapable, ListenerAware

log = logging.getLogger("camgate.audio")

OPUS_STEREO = AudioFormat("OPUS", OPUS_CLOCK_RATE, 2)


class AudioTranscoder(Protocol):
    """Turns a camera's packets into packets of `output_format`, calling the `emit`
    it was built with (on the event loop) for each one."""

    output_format: AudioFormat

    def feed(self, packet: AudioPacket) -> None: ...

    def close(self) -> None: ...


# (the camera's format, emit) -> a running transcoder; raises ValueError if it can't.
# A factory may also have `check(camera_format)`, raising ValueError for a format it
# could never transcode: run once when the format becomes known, not at the first listener.
TranscoderFactory = Callable[[AudioFormat, Callable[[AudioPacket], None]], AudioTranscoder]


class AudioFanout:
    """The audio half of a CameraHub."""

    def __init__(
        self,
        camera: str,
        *,
        enabled: bool = True,
        transcoder_factory: TranscoderFactory | None = None,
    ) -> None:
        self.camera = camera
        self.enabled = enabled
        self._transcoder_factory = transcoder_factory
        self._source: AudioCapable | None = None
        self._camera_format: AudioFormat | None = None  # last known, kept while idle
        self._refused: str | None = None
        self._subscriptions: set[AudioSubscription] = set()
        self._transcoder: AudioTranscoder | None = None
        self._transcoder_input: AudioFormat | None = None
        # The transcoder refused this format (its config): why, until the format changes.
        self._untranscodable: tuple[AudioFormat, str] | None = None
        self._checked: AudioFormat | None = None  # the last format the factory checked
        # One continuous timeline across reconnects, like the video's.
        self._offset = 0
        self._last_timestamp: int | None = None
        self._packet_duration = 0
        self._new_connection = True
        self.packets_received = 0
        self.packets_dropped_closed = 0
        # Called after each packet reached every listener (on the fast send path: after
        # each one's sendmmsg returned), with when that began (time.monotonic()): the
        # benchmark times the gateway's part of the audio's transit by it.
        self.delivered: Callable[[AudioPacket, float], None] | None = None

    # --- the source -----------------------------------------------------------------

    def attach(self, source: object) -> None:
        """A new connection to the camera: its audio comes through here (if it has any)."""
        self._new_connection = True
        if not self.enabled or not isinstance(source, AudioCapable):
            self._source = None
            return
        self._source = source
        source.attach_audio(self.on_packet)
        self._tell_source()

    def detach(self) -> None:
        self._source = None

    @property
    def camera_format(self) -> AudioFormat | None:
        """The camera's audio as it sends it (the last known while disconnected)."""
        if self._source is not None and self._source.audio_format is not None:
            self._camera_format = self._source.audio_format
            self._refused = self._source.audio_refused
        elif self._source is not None and self._source.audio_refused is not None:
            self._camera_format = None
            self._refused = self._source.audio_refused
        return self._camera_format if self.enabled else None

    @property
    def refused(self) -> str | None:
        """Why the camera's audio is not passed on; None when it is (or there is none)."""
        camera_format = self.camera_format
        if camera_format is not None and self._output_for(camera_format) is None:
            if self._untranscodable is not None and self._untranscodable[0] == camera_format:
                return self._untranscodable[1]
            return f"{camera_format.describe()}: not supported"
        return self._refused if self.enabled else None

    @property
    def output_format(self) -> AudioFormat | None:
        """What listeners receive; None when the camera has no audio camgate can send."""
        camera_format = self.camera_format
        return None if camera_format is None else self._output_for(camera_format)

    def _output_for(self, camera_format: AudioFormat) -> AudioFormat | None:
        if camera_format.passthrough:
            return camera_format
        if camera_format.codec == AAC and self._transcoder_factory is not None:
            self._check(camera_format)
            untranscodable = self._untranscodable
            if untranscodable is None or untranscodable[0] != camera_format:
                return OPUS_STEREO
        return None

    def _check(self, camera_format: AudioFormat) -> None:
        check = getattr(self._transcoder_factory, "check", None)
        if check is None or self._checked == camera_format:
            return
        self._checked = camera_format
        try:
            check(camera_format)
        except ValueError as exc:
            log.warning("camera %s: cannot transcode its audio: %s", self.camera, exc)
            self._untranscodable = (camera_format, str(exc))

    # --- listeners ------------------------------------------------------------------

    @property
    def listeners(self) -> int:
        return len(self._subscriptions)

    @property
    def dropped(self) -> int:
        return self.packets_dropped_closed + sum(s.dropped for s in self._subscriptions)

    def subscribe(self) -> AudioSubscription | None:
        """A new listener of the camera's current output format; None without audio."""
        output = self.output_format
        if output is None:
            return None
        sub = AudioSubscription(output)
        self._subscriptions.add(sub)
        if len(self._subscriptions) == 1:
            self._tell_source()
        return sub

    def unsubscribe(self, sub: AudioSubscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.discard(sub)
            self.packets_dropped_closed += sub.dropped
        sub.close()
        if not self._subscriptions:
            self._stop_transcoder()
            self._tell_source()

    def _tell_source(self) -> None:
        """Whether anyone listens, for a source that only records then (a microphone)."""
        if isinstance(self._source, ListenerAware):
            self._source.audio_listening(bool(self._subscriptions))

    def close(self) -> None:
        for sub in list(self._subscriptions):
            self.unsubscribe(sub)

    # --- packets --------------------------------------------------------------------

    def on_packet(self, packet: AudioPacket) -> None:
        """Every audio packet from the source passes here once (on the event loop)."""
        self.packets_received += 1
        camera_format = self.camera_format
        if camera_format is None or not self._subscriptions:
            self._new_connection = True  # nobody hears this: restart the timeline later
            return
        output = self._output_for(camera_format)
        self._end_mismatched(output)
        if output is None or not self._subscriptions:
            return
        if camera_format.passthrough:
            self._deliver(packet)
            return
        transcoder = self._transcoder_for(camera_format)
        if transcoder is not None:
            transcoder.feed(packet)

    def _end_mismatched(self, output: AudioFormat | None) -> None:
        """The camera came back with other audio (a new codec or rate): the listeners'
        negotiated codec no longer fits; their audio ends, the video goes on."""
        for sub in [s for s in self._subscriptions if s.format != output]:
            log.warning(
                "camera %s: audio changed from %s to %s; listeners must reconnect to hear it",
                self.camera,
                sub.format.describe(),
                output.describe() if output else "none",
            )
            self.unsubscribe(sub)

    def _transcoder_for(self, camera_format: AudioFormat) -> AudioTranscoder | None:
        if self._transcoder is not None and self._transcoder_input == camera_format:
            return self._transcoder
        self._stop_transcoder()
        assert self._transcoder_factory is not None
        try:
            self._transcoder = self._transcoder_factory(camera_format, self._deliver)
        except ValueError as exc:
            log.warning("camera %s: cannot transcode its audio: %s", self.camera, exc)
            self._untranscodable = (camera_format, str(exc))  # no retry per packet
            self.close()
            return None
        self._transcoder_input = camera_format
        log.info("camera %s: transcoding %s to Opus", self.camera, camera_format.describe())
        return self._transcoder

    def _stop_transcoder(self) -> None:
        transcoder, self._transcoder = self._transcoder, None
        self._transcoder_input = None
        if transcoder is not None:
            transcoder.close()
            log.info("camera %s: no listeners, audio transcoding stopped", self.camera)

    def _deliver(self, packet: AudioPacket) -> None:
        """One loop over the listeners, at the packet's arrival: each listener's sender
        sends it there and then (AudioSubscription.deliver) or queues it."""
        packet = self._rebase(packet)
        delivered = self.delivered
        began = time.monotonic() if delivered is not None else 0.0
        for sub in self._subscriptions:
            sub.push(packet)
        if delivered is not None:
            delivered(packet, began)

    def _rebase(self, packet: AudioPacket) -> AudioPacket:
        """Keep one timeline across reconnects (a new session starts its clock anywhere)."""
        if self._new_connection:
            self._new_connection = False
            if self._last_timestamp is None:
                self._offset = -packet.timestamp
            else:
                self._offset = self._last_timestamp + self._packet_duration - packet.timestamp
        timestamp = packet.timestamp + self._offset
        if self._last_timestamp is not None and timestamp > self._last_timestamp:
            self._packet_duration = min(timestamp - self._last_timestamp, OPUS_CLOCK_RATE)
        self._last_timestamp = timestamp
        if timestamp == packet.timestamp:
            return packet
        return AudioPacket(packet.payload, timestamp, packet.arrival, packet.capture)

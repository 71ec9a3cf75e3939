"""AudioFanout: one camera's sound shared by every listener (passthrough or one
transcoder while someone listens), one timeline across reconnects, `audio: off`."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.audio.fanout import OPUS_STEREO, AudioFanout
from gateway.audio.subscription import AudioSubscription
from gateway.media.audio import AudioFormat, AudioPacket
from gateway.sources.base import AudioCapable
from gateway.subscription import SubscriptionClosed

PCMA = AudioFormat("PCMA", 8000, 1)
OPUS = AudioFormat("OPUS", 48000, 2)
AAC = AudioFormat("AAC", 16000, 1, bytes.fromhex("1408"))


class Source:
    """A source as the hub sees it: the AudioCapable contract and nothing else."""

    def __init__(self, audio_format: AudioFormat | None, refused: str | None = None) -> None:
        self.audio_format = audio_format
        self.audio_refused = refused
        self.emit: Callable[[AudioPacket], None] | None = None

    def attach_audio(self, emit_audio: Callable[[AudioPacket], None]) -> None:
        self.emit = emit_audio

    def send(self, *timestamps: int) -> None:
        assert self.emit is not None
        for timestamp in timestamps:
            self.emit(AudioPacket(b"\xd5" * 160, timestamp, 0.0))


class Transcoder:
    def __init__(self, camera_format: AudioFormat, emit: Callable[[AudioPacket], None]) -> None:
        self.camera_format = camera_format
        self.output_format = OPUS_STEREO
        self.emit = emit
        self.fed = 0
        self.closed = False

    def feed(self, packet: AudioPacket) -> None:
        self.fed += 1
        self.emit(AudioPacket(b"opus", packet.timestamp * 3, packet.arrival, packet.capture))

    def close(self) -> None:
        self.closed = True


def queued(sub: AudioSubscription) -> list[int]:
    return [p.timestamp for p in sub._queue]


def test_the_test_source_is_audio_capable() -> None:
    assert isinstance(Source(PCMA), AudioCapable)


def test_passthrough_reaches_every_listener_on_one_timeline() -> None:
    fanout = AudioFanout("cam")
    source = Source(PCMA)
    fanout.attach(source)
    first, second = fanout.subscribe(), fanout.subscribe()
    assert first is not None and second is not None and first.format == PCMA
    source.send(5000, 5160)
    assert queued(first) == queued(second) == [0, 160]
    assert fanout.listeners == 2 and fanout.refused is None


def test_timeline_continues_across_a_reconnect() -> None:
    fanout = AudioFanout("cam")
    source = Source(PCMA)
    fanout.attach(source)
    sub = fanout.subscribe()
    assert sub is not None
    source.send(5000, 5160)
    fanout.detach()
    again = Source(PCMA)
    fanout.attach(again)  # the camera starts its RTP clock anywhere
    again.send(900_000, 900_160)
    assert queued(sub) == [0, 160, 320, 480]


async def test_a_new_codec_ends_the_old_listeners() -> None:
    fanout = AudioFanout("cam")
    fanout.attach(Source(PCMA))
    sub = fanout.subscribe()
    assert sub is not None
    fanout.detach()
    opus = Source(OPUS)
    fanout.attach(opus)
    opus.send(0)
    with pytest.raises(SubscriptionClosed):
        await sub.get()
    assert fanout.listeners == 0 and fanout.camera_format == OPUS


def test_transcoder_runs_only_while_someone_listens() -> None:
    made: list[Transcoder] = []

    def factory(fmt: AudioFormat, emit: Callable[[AudioPacket], None]) -> Transcoder:
        made.append(Transcoder(fmt, emit))
        return made[-1]

    fanout = AudioFanout("cam", transcoder_factory=factory)
    source = Source(AAC)
    fanout.attach(source)
    source.send(0, 1024)
    assert made == [] and fanout.output_format == OPUS_STEREO
    sub = fanout.subscribe()
    assert sub is not None and sub.format == OPUS_STEREO
    source.send(2048, 3072)
    assert len(made) == 1 and made[0].fed == 2 and made[0].camera_format == AAC
    assert [p.payload for p in sub._queue] == [b"opus", b"opus"]
    fanout.unsubscribe(sub)
    assert made[0].closed


def test_a_transcoder_that_cannot_start_refuses_the_audio() -> None:
    def factory(fmt: AudioFormat, emit: Callable[[AudioPacket], None]) -> Transcoder:
        raise ValueError("AAC Main profile: not supported")

    fanout = AudioFanout("cam", transcoder_factory=factory)
    source = Source(AAC)
    fanout.attach(source)
    sub = fanout.subscribe()
    assert sub is not None
    source.send(0)
    assert sub.closed and fanout.listeners == 0


def test_aac_without_a_transcoder_is_refused() -> None:
    fanout = AudioFanout("cam")
    fanout.attach(Source(AAC))
    assert fanout.subscribe() is None
    assert fanout.refused == "AAC 16000 Hz mono: not supported"


def test_a_refusing_source_says_why() -> None:
    fanout = AudioFanout("cam")
    fanout.attach(Source(None, "G726-32 8000 Hz: not supported"))
    assert fanout.camera_format is None and fanout.subscribe() is None
    assert fanout.refused == "G726-32 8000 Hz: not supported"


def test_audio_off_never_attaches() -> None:
    fanout = AudioFanout("cam", enabled=False)
    source = Source(PCMA)
    fanout.attach(source)
    assert source.emit is None  # the source sets up no audio at all
    assert fanout.camera_format is None and fanout.subscribe() is None
    assert fanout.refused is None

"""AAC to Opus (gateway/audio/transcode.py) with real AAC from PyAV's encoder and the
Opus decoded back by libopus: the sound, its timing and its bad days."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from gateway.audio.fanout import AudioFanout
from gateway.audio.transcode import QUEUE_UNITS, AacToOpus, aac_to_opus
from gateway.media.aac_config import parse_aac_config
from gateway.media.audio import AudioFormat, AudioPacket
from tests.rig.aac_audio import AacStream, aac_sine, decode_opus, peak_frequency
from tests.rig.wait import wait_until

GARBAGE = b"\xff\x00garbage" * 3  # FFmpeg's AAC decoder: "Invalid data found"


class Collector:
    def __init__(self) -> None:
        self.packets: list[AudioPacket] = []

    def __call__(self, packet: AudioPacket) -> None:
        self.packets.append(packet)


async def transcode_all(
    stream: AacStream, packets: list[AudioPacket]
) -> tuple[AacToOpus, list[AudioPacket]]:
    out = Collector()
    transcoder = AacToOpus(stream.format, out, camera="test")
    for n, packet in enumerate(packets, 1):
        transcoder.feed(packet)
        if n % 32 == 0:  # as a camera would: never more than the queue holds
            await wait_until(lambda n=n: transcoder.units_in == n)  # type: ignore[misc]
    await wait_until(lambda: transcoder.units_in == len(packets))
    assert transcoder.units_dropped_late == 0
    await wait_until(lambda: len(out.packets) == transcoder.packets_out)
    transcoder.close()
    assert transcoder.join()
    return transcoder, out.packets


def expected_packets(stream: AacStream, units: int) -> float:
    return units * stream.samples_per_unit * 48000 / stream.format.clock_rate / 960


@pytest.mark.parametrize(("rate", "channels"), [(16000, 1), (48000, 2), (44100, 1)])
async def test_the_opus_is_the_same_sine_on_a_continuous_48khz_timeline(
    rate: int, channels: int
) -> None:
    stream = aac_sine(rate, channels, seconds=2.0, frequency=440.0)
    start = 123_456
    transcoder, packets = await transcode_all(
        stream, stream.packets(start=start, capture=1_700_000_000.0)
    )
    assert transcoder.units_undecodable == 0 and transcoder.resyncs == 0
    # The duration matches the input's within a frame (the resampler keeps < 20 ms back).
    assert abs(len(packets) - expected_packets(stream, len(stream.units))) <= 1
    first = start * 48000 // rate
    assert [p.timestamp for p in packets] == [first + 960 * n for n in range(len(packets))]
    for packet in packets:  # capture moves with the samples, on the camera's clock
        assert packet.capture == pytest.approx(
            1_700_000_000.0 + (packet.timestamp - first) / 48000, abs=1e-6
        )
    pcm = decode_opus([p.payload for p in packets])
    assert abs(len(pcm) - len(packets) * 960) <= 960
    body = pcm[9600:-9600]  # past the codecs' start-up
    assert peak_frequency(body) == pytest.approx(440.0, abs=5.0)
    assert float(abs(body).max()) > 0.25  # the sine's 0.5, not near-silence


async def test_undecodable_units_are_dropped_counted_and_the_timeline_holds() -> None:
    stream = aac_sine(16000, 1, seconds=2.0)
    packets = stream.packets(start=0, capture=50.0)
    for n in (10, 20, 24):  # single units: 64 ms holes, under MAX_FILL_S
        packets[n] = dataclasses.replace(packets[n], payload=GARBAGE)
    transcoder, out = await transcode_all(stream, packets)
    assert transcoder.units_undecodable == 3
    assert transcoder.resyncs == 0  # the holes are filled with silence, not skipped
    assert abs(len(out) - expected_packets(stream, len(stream.units))) <= 1
    assert [p.timestamp for p in out] == [960 * n for n in range(len(out))]
    tail = decode_opus([p.payload for p in out])[-24000:-4800]  # after the last hole
    assert peak_frequency(tail) == pytest.approx(440.0, abs=5.0)


async def test_a_repeated_unit_is_skipped_and_the_timeline_holds() -> None:
    stream = aac_sine(16000, 1, seconds=1.0)
    packets = stream.packets(start=0)
    repeated = [*packets[:10], packets[9], *packets[10:]]  # the camera sent one twice
    transcoder, out = await transcode_all(stream, repeated)
    assert transcoder.units_overlapping == 1 and transcoder.resyncs == 0
    assert abs(len(out) - expected_packets(stream, len(stream.units))) <= 1
    assert [p.timestamp for p in out] == [960 * n for n in range(len(out))]


async def test_a_long_gap_resyncs_to_the_camera_timestamps() -> None:
    stream = aac_sine(16000, 1, seconds=1.0)
    half = len(stream.units) // 2
    packets = stream.packets(start=0)
    later = [dataclasses.replace(p, timestamp=p.timestamp + 16000 * 10) for p in packets[half:]]
    transcoder, out = await transcode_all(stream, packets[:half] + later)
    assert transcoder.resyncs == 1
    stamps = [p.timestamp for p in out]
    jump = next(n for n in range(1, len(stamps)) if stamps[n] - stamps[n - 1] != 960)
    assert stamps[jump] == later[0].timestamp * 3  # 16 kHz -> 48 kHz
    assert all(b - a == 960 for a, b in zip(stamps[jump:], stamps[jump + 1 :], strict=False))


async def test_a_thread_that_falls_behind_drops_the_oldest_and_counts() -> None:
    stream = aac_sine(16000, 1, seconds=6.0)
    out = Collector()
    transcoder = AacToOpus(stream.format, out, camera="test")
    packets = stream.packets()
    assert len(packets) > QUEUE_UNITS + 10
    with transcoder._wake:  # hold the thread off while the units pile up
        for packet in packets:
            transcoder.feed(packet)
    assert transcoder.units_dropped_late == len(packets) - QUEUE_UNITS
    await wait_until(lambda: transcoder.units_in == QUEUE_UNITS)
    transcoder.close()
    assert transcoder.join()


async def test_close_stops_the_thread_and_nothing_more_is_delivered() -> None:
    stream = aac_sine(16000, 1, seconds=2.0)
    out = Collector()
    transcoder = AacToOpus(stream.format, out, camera="test")
    for packet in stream.packets()[:20]:
        transcoder.feed(packet)
    await wait_until(lambda: len(out.packets) > 0)
    transcoder.close()
    assert transcoder.join(timeout=5.0)
    delivered = len(out.packets)
    for packet in stream.packets()[20:]:
        transcoder.feed(packet)  # late packets from the camera: ignored
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(out.packets) == delivered and not transcoder.running


@pytest.mark.parametrize(
    ("config", "says"),
    [
        (b"", "no AAC AudioSpecificConfig"),
        (b"\x14", "cut short"),
        (b"\x16\x88", "index 13 is reserved"),  # AAC LC, sampling frequency index 13
        (bytes([0x19, 0x88]), "AAC SSR is not supported"),  # object type 3
        (bytes([0xF9, 0x40, 0x22, 0x00]), "USAC is not supported"),  # escape: 32 + 10 = 42
    ],
)
async def test_an_unusable_config_is_refused_with_a_reason(config: bytes, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        AacToOpus(AudioFormat("AAC", 16000, 1, config), Collector())


def test_config_head_is_read() -> None:
    head = parse_aac_config(aac_sine(16000, 1, seconds=0.1).format.config)
    assert (head.object_type, head.sample_rate, head.channels) == (2, 16000, 1)
    he = parse_aac_config(bytes.fromhex("2b1188"))  # HE-AAC: 24 kHz core, 48 kHz out
    assert (he.object_type, he.sample_rate, he.channels) == (5, 48000, 2)


class AacCamera:
    """An AudioCapable source as the fanout sees it."""

    def __init__(self, audio_format: AudioFormat) -> None:
        self.audio_format: AudioFormat | None = audio_format
        self.audio_refused: str | None = None
        self.emit: object = None

    def attach_audio(self, emit_audio: object) -> None:
        self.emit = emit_audio


async def test_the_transcoder_runs_only_while_someone_listens() -> None:
    stream = aac_sine(16000, 1, seconds=2.0, frequency=880.0)
    fanout = AudioFanout("cam", transcoder_factory=aac_to_opus("cam"))
    camera = AacCamera(stream.format)
    fanout.attach(camera)
    packets = stream.packets(capture=10.0)
    for packet in packets[:10]:  # nobody listens: nothing is transcoded
        fanout.on_packet(packet)
    assert fanout._transcoder is None
    assert fanout.output_format == AudioFormat("OPUS", 48000, 2)

    first, second = fanout.subscribe(), fanout.subscribe()
    assert first is not None and second is not None
    for packet in packets[10:]:
        fanout.on_packet(packet)
    transcoder = fanout._transcoder
    assert isinstance(transcoder, AacToOpus) and transcoder.running
    heard = [await asyncio.wait_for(first.get(), 10) for _ in range(40)]
    assert [p.timestamp for p in heard] == [heard[0].timestamp + 960 * n for n in range(40)]
    assert peak_frequency(decode_opus([p.payload for p in heard])[4800:]) == pytest.approx(
        880.0, abs=10.0
    )
    fanout.unsubscribe(first)
    assert transcoder.running  # one listener is left
    fanout.unsubscribe(second)
    assert fanout._transcoder is None
    assert transcoder.join(timeout=5.0)  # the last listener left: its thread ended
    for packet in packets[:10]:
        fanout.on_packet(packet)
    assert fanout._transcoder is None

"""The unit of sound that flows from a source to every listener, and what it is."""

from __future__ import annotations

from dataclasses import dataclass

# Codecs a browser takes over WebRTC as the camera sends them: passed through untouched.
PASSTHROUGH_CODECS = frozenset({"PCMU", "PCMA", "OPUS"})
# Sent to viewers in their place: AAC is transcoded to this once per camera.
OPUS_CLOCK_RATE = 48_000
AAC = "AAC"


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """A camera's audio as its stream declares it.

    `codec` is the upper-case RTP encoding name (PCMU, PCMA, OPUS) or AAC for MPEG-4
    AAC in any RTP form; `clock_rate` is the RTP clock in Hz (Opus: always 48000);
    `config` is AAC's AudioSpecificConfig (SDP `config=`), empty for other codecs.
    """

    codec: str
    clock_rate: int
    channels: int = 1
    config: bytes = b""

    @property
    def passthrough(self) -> bool:
        return self.codec in PASSTHROUGH_CODECS

    def describe(self) -> str:
        layout = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels} channels")
        return f"{self.codec} {self.clock_rate} Hz {layout}"


@dataclass(frozen=True, slots=True, eq=False)
class AudioPacket:
    """One codec frame: what one RTP packet carries downstream.

    `payload` is G.711 samples, one Opus packet, or one raw AAC access unit (no ADTS
    header, no RFC 3640 AU header). `timestamp` is on the format's clock rate and
    unwrapped (never goes back by 2**32). `arrival` is `time.monotonic()` when it
    reached the gateway. `capture` is when the camera captured it, on the camera's
    wall clock in Unix seconds, from the RTCP sender reports of its track (None until
    one arrived): the same clock as `AccessUnit.capture`, which keeps sound and
    picture in sync downstream.
    """

    payload: bytes
    timestamp: int
    arrival: float
    capture: float | None = None

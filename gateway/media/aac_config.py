"""AAC's AudioSpecificConfig (ISO 14496-3 1.6.2.1): what a camera's SDP `config=` says.

Only the head is read: the object type, the sampling rate and the channels, enough to
refuse what cannot be decoded with a message that says why before any decoder runs.
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLING_FREQUENCIES = (
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
)  # fmt: skip
OBJECT_TYPE_NAMES = {
    1: "AAC Main",
    2: "AAC LC",
    3: "AAC SSR",
    4: "AAC LTP",
    5: "HE-AAC (SBR)",
    6: "AAC Scalable",
    17: "ER AAC LC",
    19: "ER AAC LTP",
    20: "ER AAC Scalable",
    23: "ER AAC LD",
    29: "HE-AAC v2 (PS)",
    39: "ER AAC ELD",
    42: "USAC",
}
# What FFmpeg's `aac` decoder decodes (SSR, the scalable profiles and USAC it refuses).
DECODABLE_OBJECT_TYPES = frozenset({1, 2, 4, 5, 17, 19, 23, 29, 39})


@dataclass(frozen=True, slots=True)
class AacConfig:
    object_type: int
    sample_rate: int
    channels: int  # 0: given by a program config element in the stream

    @property
    def name(self) -> str:
        return OBJECT_TYPE_NAMES.get(self.object_type, f"AAC object type {self.object_type}")


class _Bits:
    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._left = len(data) * 8

    def read(self, count: int) -> int:
        if count > self._left:
            raise ValueError("the AudioSpecificConfig is cut short")
        self._left -= count
        return (self._value >> self._left) & ((1 << count) - 1)


def parse_aac_config(config: bytes) -> AacConfig:
    """The head of an AudioSpecificConfig; ValueError when it is missing or unusable."""
    if not config:
        raise ValueError("the camera sent no AAC AudioSpecificConfig (SDP config=)")
    bits = _Bits(config)
    object_type = _object_type(bits)
    sample_rate = _sample_rate(bits)
    channels = bits.read(4)
    if object_type in (5, 29):  # explicit SBR/PS: the output rate, then the core codec
        sample_rate = _sample_rate(bits)
        object_type_core = _object_type(bits)
        if object_type_core not in DECODABLE_OBJECT_TYPES:
            raise ValueError(f"HE-AAC over AAC object type {object_type_core} is not supported")
    result = AacConfig(object_type, sample_rate, channels)
    if object_type not in DECODABLE_OBJECT_TYPES:
        raise ValueError(f"{result.name} is not supported (AAC LC and HE-AAC are)")
    if channels >= 8:
        raise ValueError(f"AAC channel configuration {channels} is reserved")
    return result


def _object_type(bits: _Bits) -> int:
    object_type = bits.read(5)
    return 32 + bits.read(6) if object_type == 31 else object_type


def _sample_rate(bits: _Bits) -> int:
    index = bits.read(4)
    if index == 15:
        rate = bits.read(24)
    elif index < len(SAMPLING_FREQUENCIES):
        rate = SAMPLING_FREQUENCIES[index]
    else:
        raise ValueError(f"AAC sampling frequency index {index} is reserved")
    if not 7350 <= rate <= 96000:
        raise ValueError(f"AAC sampling rate {rate} Hz is out of range")
    return rate

"""The camera's audio track in a DESCRIBE answer: which codec, and whether camgate takes it.

PCMU, PCMA and Opus pass through; MPEG-4 AAC in RFC 3640 form (MPEG4-GENERIC,
AAC-hbr / AAC-lbr) or as MP4A-LATM with its config in the SDP is accepted for
transcoding. Anything else (G.726, L16, ...) becomes a refusal that names it, e.g.
"G726-32 8000 Hz: not supported"; the video plays all the same.

An ONVIF camera asked for its audio backchannel also lists a second audio section, the
one the camera receives (a=sendonly in its SDP): that one is never the camera's sound.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.media.audio import AAC, AudioFormat
from gateway.media.rtp_audio import AacLayout, BitReader
from gateway.rtsp.sdp import MediaDescription, parse_fmtp, parse_sdp, resolve_control

_STATIC_AUDIO = {0: ("PCMU", 8000, 1), 8: ("PCMA", 8000, 1)}  # RFC 3551 table 4
_AAC_MODES = frozenset({"aac-hbr", "aac-lbr"})
MAX_AAC_CONFIG_BYTES = 64  # an AudioSpecificConfig is a few bytes


@dataclass(frozen=True)
class AudioTrack:
    """The camera's audio section: `format` if camgate takes it, else `refused` says why."""

    payload_type: int
    control_url: str
    format: AudioFormat | None
    refused: str | None = None
    aac: AacLayout | None = None  # MPEG4-GENERIC's AU header layout
    latm: bool = False  # MP4A-LATM framing


def find_audio(sdp_text: str, base: str) -> AudioTrack | None:
    """The camera's (first) audio track; None if the SDP has none."""
    session = parse_sdp(sdp_text)
    sections = [m for m in session.media if m.kind == "audio" and m.payload_types]
    if len(sections) > 1:
        # Besides the backchannel (a=sendonly) only the camera's own sound is left.
        sections = [m for m in sections if m.direction != "sendonly"]
    if not sections:
        return None
    media = sections[0]
    aggregate = resolve_control(base, session.control)
    control = resolve_control(base, media.control) if media.control else aggregate
    pt = media.payload_types[0]
    try:
        audio_format, aac = _format(media, pt)
    except ValueError as exc:
        return AudioTrack(pt, control, None, refused=str(exc))
    latm = media.codec(pt) == "MP4A-LATM"
    return AudioTrack(pt, control, audio_format, aac=aac, latm=latm)


def _rtpmap(media: MediaDescription, pt: int) -> tuple[str, int, int]:
    """(encoding name, clock rate, channels) from the rtpmap or the static table."""
    line = media.rtpmap.get(pt)
    if line is None:
        if pt in _STATIC_AUDIO:
            return _STATIC_AUDIO[pt]
        raise ValueError(f"{media.codec(pt)}: not supported")
    parts = [p.strip() for p in line.split("/")]
    name = parts[0].upper()
    rate = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    channels = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 1
    if not 1000 <= rate <= 192_000 or not 1 <= channels <= 8:
        raise ValueError(f"{name[:32]} {rate} Hz {channels} channels: not supported")
    return name, rate, channels


def _format(media: MediaDescription, pt: int) -> tuple[AudioFormat, AacLayout | None]:
    name, rate, channels = _rtpmap(media, pt)
    if name in ("PCMU", "PCMA") and rate == 8000 and channels == 1:
        return AudioFormat(name, rate, channels), None
    if name == "OPUS" and rate == 48_000:
        return AudioFormat("OPUS", rate, 2), None
    if name == "MPEG4-GENERIC":
        return _aac(parse_fmtp(media.fmtp.get(pt, "")), rate, channels)
    if name == "MP4A-LATM":
        return _latm(parse_fmtp(media.fmtp.get(pt, "")), rate, channels), None
    raise ValueError(f"{name[:32]} {rate} Hz: not supported")


def _aac(fmtp: dict[str, str], rate: int, channels: int) -> tuple[AudioFormat, AacLayout]:
    mode = fmtp.get("mode", "").lower()
    if mode not in _AAC_MODES:
        raise ValueError(f"MPEG4-GENERIC mode {mode[:16] or 'none'}: not supported")
    layout = AacLayout(
        size_length=_bits(fmtp, "sizelength", 0),
        index_length=_bits(fmtp, "indexlength", 0),
        index_delta_length=_bits(fmtp, "indexdeltalength", 0),
    )
    if not 1 <= layout.size_length <= 16:
        raise ValueError("MPEG4-GENERIC without a usable sizelength: not supported")
    config_hex = fmtp.get("config", "")
    try:
        config = bytes.fromhex(config_hex)
    except ValueError:
        raise ValueError("MPEG4-GENERIC with a broken config: not supported") from None
    if not config or len(config) > MAX_AAC_CONFIG_BYTES:
        raise ValueError("MPEG4-GENERIC without a usable config: not supported")
    return AudioFormat(AAC, rate, channels, config), layout


def _latm(fmtp: dict[str, str], rate: int, channels: int) -> AudioFormat:
    if fmtp.get("cpresent", "1") != "0":
        raise ValueError("MP4A-LATM with in-band config: not supported")
    try:
        config = audio_specific_config(bytes.fromhex(fmtp.get("config", "")))
    except ValueError:
        raise ValueError("MP4A-LATM with an unusable config: not supported") from None
    return AudioFormat(AAC, rate, channels, config)


def audio_specific_config(stream_mux_config: bytes) -> bytes:
    """The AudioSpecificConfig inside a LATM StreamMuxConfig (ISO 14496-3 1.7.3), for the
    one layout cameras use: version 0, one program, one layer, AAC with a 4-bit sampling
    index. ValueError for anything else."""
    bits = BitReader(stream_mux_config[:MAX_AAC_CONFIG_BYTES])
    if bits.read(1) != 0:
        raise ValueError("audioMuxVersion 1")
    bits.read(1)  # allStreamsSameTimeFraming
    if bits.read(6) or bits.read(4) or bits.read(3):
        raise ValueError("more than one subframe, program or layer")
    object_type, rate_index, channel_config = bits.read(5), bits.read(4), bits.read(4)
    if object_type in (0, 31) or rate_index == 15:
        raise ValueError("an AudioSpecificConfig camgate can't read")
    frame_length, core, extension = bits.read(1), bits.read(1), bits.read(1)
    if core or extension:
        raise ValueError("an AudioSpecificConfig camgate can't read")
    value = (object_type << 11) | (rate_index << 7) | (channel_config << 3) | (frame_length << 2)
    return value.to_bytes(2, "big")


def _bits(fmtp: dict[str, str], key: str, default: int) -> int:
    text = fmtp.get(key, "")
    if not text:
        return default
    if not text.isdigit() or int(text) > 16:
        raise ValueError(f"MPEG4-GENERIC {key}={text[:8]}: not supported")
    return int(text)

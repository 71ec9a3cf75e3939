"""A camera's audio backchannel in the SDP it answers to a DESCRIBE that carries
`Require: www.onvif.org/ver20/backchannel` (ONVIF Streaming Specification 5.3).

The backchannel is the audio media the camera marks `a=sendonly` (it is the client that
sends); the camera's own sound, if any, is `recvonly` or unmarked. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.rtsp.sdp import MediaDescription, parse_fmtp, parse_sdp, resolve_control

REQUIRE_BACKCHANNEL = ("Require", "www.onvif.org/ver20/backchannel")
SUPPORTED = ("PCMU", "PCMA", "AAC")
_NAMES = {"PCMU": "PCMU", "PCMA": "PCMA", "MPEG4-GENERIC": "AAC"}
_DIRECTIONS = ("sendonly", "recvonly", "sendrecv", "inactive")


class BackchannelUnsupported(ValueError):
    """The camera has no backchannel camgate can talk to; the message says why."""


@dataclass(frozen=True)
class Backchannel:
    codec: str  # "PCMU" | "PCMA" | "AAC"
    payload_type: int
    clock_rate: int
    channels: int
    control_url: str  # for SETUP
    aggregate_url: str  # for PLAY, keepalives and TEARDOWN
    config: bytes = b""  # AAC: the AudioSpecificConfig
    size_length: int = 13  # AAC-hbr AU-header field widths (RFC 3640 3.3.6)
    index_length: int = 3

    @property
    def samples_per_packet(self) -> int:
        """Samples per channel in one RTP packet: 20 ms of G.711, one AAC frame."""
        return 1024 if self.codec == "AAC" else self.clock_rate // 50


def media_directions(sdp_text: str) -> list[str | None]:
    """The direction attribute of each m= section, in order (None: not given)."""
    directions: list[str | None] = []
    for raw in sdp_text.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            directions.append(None)
        elif directions and line[2:].strip().lower() in _DIRECTIONS and line.startswith("a="):
            directions[-1] = line[2:].strip().lower()
    return directions


def find_backchannel(sdp_text: str, base: str) -> Backchannel:
    """The backchannel of a DESCRIBE answer; BackchannelUnsupported says why there is
    none camgate can use."""
    session = parse_sdp(sdp_text)
    directions = media_directions(sdp_text)
    candidates = [
        media
        for media, direction in zip(session.media, directions, strict=False)
        if media.kind == "audio" and direction == "sendonly"
    ]
    if not candidates:
        raise BackchannelUnsupported("the camera has no audio backchannel")
    aggregate = resolve_control(base, session.control)
    offered: list[str] = []
    for media in candidates:
        for pt in media.payload_types:
            name = media.codec(pt)
            offered.append(_display(name))
            if name in _NAMES:
                return _backchannel(media, pt, _NAMES[name], base, aggregate)
    codecs = ", ".join(dict.fromkeys(offered)) or "no codec"
    raise BackchannelUnsupported(
        f"the camera's backchannel takes {codecs}; camgate talks PCMU, PCMA or AAC"
    )


def _display(name: str) -> str:
    return "G.726" if name.startswith("G726") else name


def _backchannel(
    media: MediaDescription, pt: int, codec: str, base: str, aggregate: str
) -> Backchannel:
    rtpmap = media.rtpmap.get(pt, "").split("/")
    rate = int(rtpmap[1]) if len(rtpmap) > 1 and rtpmap[1].strip().isdigit() else 8000
    channels = int(rtpmap[2]) if len(rtpmap) > 2 and rtpmap[2].strip().isdigit() else 1
    control = resolve_control(base, media.control) if media.control else aggregate
    if codec != "AAC":
        return Backchannel(codec, pt, rate, channels, control, aggregate)
    fmtp = parse_fmtp(media.fmtp.get(pt, ""))
    if fmtp.get("mode", "").lower() != "aac-hbr":
        raise BackchannelUnsupported(
            f"the camera's AAC backchannel wants mode {fmtp.get('mode') or 'unset'}; "
            "camgate sends AAC-hbr"
        )
    try:
        config = bytes.fromhex(fmtp.get("config", ""))
        size_length = int(fmtp.get("sizelength", "13"))
        index_length = int(fmtp.get("indexlength", "3"))
    except ValueError:
        raise BackchannelUnsupported("the camera's AAC backchannel fmtp is malformed") from None
    if not config or size_length + index_length != 16:
        raise BackchannelUnsupported("the camera's AAC backchannel fmtp is incomplete")
    return Backchannel(
        codec, pt, rate, channels, control, aggregate, config, size_length, index_length
    )

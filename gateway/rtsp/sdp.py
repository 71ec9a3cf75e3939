"""The DESCRIBE answer (SDP, RFC 4566) as far as camgate needs it: the first H.264 video
stream, its control URL and its out-of-band parameter sets.

Camera SDPs are often sloppy (bare LF, fmtp on the wrong media, padding-less base64,
missing rtpmap for static types), so parsing is lenient and only the absence of H.264
is an error, one that names what the camera does offer.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from gateway.rtsp.message import Headers

# Static RTP payload types (RFC 3551) that cameras use without an rtpmap line.
_STATIC_PAYLOADS = {
    0: "PCMU", 8: "PCMA", 9: "G722", 14: "MPA", 26: "JPEG (MJPEG)", 32: "MPV", 33: "MP2T",
    34: "H263",
}  # fmt: skip
_H264_CLOCK_RATE = 90_000
_SPS, _PPS = 7, 8


class SdpError(ValueError):
    """The SDP has no stream camgate can use; the message says what it has instead."""

    def __init__(self, message: str, offers: list[str]) -> None:
        super().__init__(message)
        self.offers = offers


@dataclass
class MediaDescription:
    kind: str  # "video", "audio", "application", ...
    payload_types: list[int]
    rtpmap: dict[int, str] = field(default_factory=dict)  # pt -> "H264/90000"
    fmtp: dict[int, str] = field(default_factory=dict)  # pt -> "packetization-mode=1;..."
    control: str | None = None
    direction: str | None = None  # a=sendonly / recvonly / sendrecv / inactive, if given

    def codec(self, pt: int) -> str:
        """The encoding name of payload type `pt` ("H264", "H265", "PCMA", ...)."""
        if pt in self.rtpmap:
            return self.rtpmap[pt].split("/")[0].strip().upper()
        return _STATIC_PAYLOADS.get(pt, f"payload type {pt}")


@dataclass
class SessionDescription:
    control: str | None = None  # session-level a=control (the aggregate URL)
    media: list[MediaDescription] = field(default_factory=list)


@dataclass(frozen=True)
class H264Stream:
    payload_type: int
    clock_rate: int
    control_url: str  # for SETUP
    aggregate_url: str  # for PLAY, TEARDOWN and keepalives
    packetization_mode: int
    profile_level_id: str | None
    parameter_sets: tuple[bytes, ...]  # SPS and PPS NAL units from sprop-parameter-sets


def parse_sdp(text: str) -> SessionDescription:
    """The parts of an SDP camgate reads; never raises on odd lines, skips them."""
    session = SessionDescription()
    current: MediaDescription | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            current = _parse_media_line(value)
            if current is not None:
                session.media.append(current)
        elif kind == "a":
            _parse_attribute(value, session, current)
    return session


def _parse_media_line(value: str) -> MediaDescription | None:
    parts = value.split()
    if len(parts) < 3:
        return None
    pts = [int(p) for p in parts[3:] if p.isdigit() and int(p) < 128]
    return MediaDescription(kind=parts[0].lower(), payload_types=pts)


def _parse_attribute(
    value: str, session: SessionDescription, media: MediaDescription | None
) -> None:
    name, _, arg = value.partition(":")
    name = name.strip().lower()
    if name == "control":
        if media is None:
            session.control = arg.strip()
        else:
            media.control = arg.strip()
    elif name in ("sendonly", "recvonly", "sendrecv", "inactive") and media is not None:
        media.direction = name
    elif name in ("rtpmap", "fmtp") and media is not None:
        pt_text, _, rest = arg.strip().partition(" ")
        if pt_text.isdigit():
            target = media.rtpmap if name == "rtpmap" else media.fmtp
            target[int(pt_text)] = rest.strip()


def parse_fmtp(text: str) -> dict[str, str]:
    """Parse `a=b; c=d` into {"a": "b", "c": "d"}, keys lower-cased."""
    params: dict[str, str] = {}
    for item in text.split(";"):
        key, sep, value = item.strip().partition("=")
        if sep and key.strip():
            params[key.strip().lower()] = value.strip()
    return params


def decode_sprop_parameter_sets(value: str) -> tuple[bytes, ...]:
    """The SPS and PPS in a sprop-parameter-sets value. Broken entries are skipped:
    the stream usually repeats them in-band anyway."""
    nals: list[bytes] = []
    for item in value.split(","):
        text = "".join(item.split())
        if not text:
            continue
        try:
            nal = base64.b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            continue
        if nal.startswith(b"\x00\x00\x00\x01"):  # a few firmwares include a start code
            nal = nal[4:]
        elif nal.startswith(b"\x00\x00\x01"):
            nal = nal[3:]
        if nal and not nal[0] & 0x80 and nal[0] & 0x1F in (_SPS, _PPS):
            nals.append(nal)
    return tuple(nals)


def base_url(headers: Headers, request_url: str) -> str:
    """RFC 2326 C.1.1: relative control URLs are relative to Content-Base, else
    Content-Location, else the request URL."""
    for name in ("Content-Base", "Content-Location"):
        value = headers.get(name)
        if value:
            return _fix_base(value.strip())
    return request_url


def _fix_base(value: str) -> str:
    # Seen in the wild: "rtsp://rtsp://host/..." and "host:port/path" without a scheme.
    lower = value.lower()
    while lower.startswith(("rtsp://rtsp://", "rtsp://rtsps://")):
        value, lower = value[7:], lower[7:]
    if "://" not in value:
        value = "rtsp://" + value
    return value


def resolve_control(base: str, control: str | None) -> str:
    """The URL a control attribute names.

    Absolute controls are used as they are, "*" or none means the base itself, and a
    relative one is appended to the base with one "/" between. That last rule is what
    live555, FFmpeg and GStreamer do rather than RFC 3986 merging, which would drop the
    base's last segment when it lacks a trailing slash ("rtsp://cam/live" +
    "trackID=1"), and real cameras depend on it.
    """
    if not control or control == "*":
        return base
    if "://" in control:
        return _fix_base(control)
    if base.endswith("/") or control.startswith("/"):
        return base.rstrip("/") + "/" + control.lstrip("/")
    return f"{base}/{control}"


def describe_offers(session: SessionDescription) -> list[str]:
    """What the SDP offers, for error messages: ["H265 video", "PCMA audio"]."""
    offers: list[str] = []
    for media in session.media:
        for pt in media.payload_types or [-1]:
            name = media.codec(pt) if pt >= 0 else "unknown codec"
            offers.append(f"{name} {media.kind}")
    return list(dict.fromkeys(offers))


def find_h264(sdp_text: str, base: str) -> H264Stream:
    """The first H.264 video stream in the SDP; SdpError naming the offers if none."""
    session = parse_sdp(sdp_text)
    for media in session.media:
        if media.kind != "video":
            continue
        for pt in media.payload_types:
            if media.codec(pt) == "H264":
                return _h264_stream(session, media, pt, base)
    offers = describe_offers(session)
    offered = ", ".join(offers) if offers else "no media at all"
    raise SdpError(f"the camera offers no H.264 video (it offers: {offered})", offers)


def _h264_stream(
    session: SessionDescription, media: MediaDescription, pt: int, base: str
) -> H264Stream:
    fmtp_line = media.fmtp.get(pt)
    if fmtp_line is None:  # some cameras put the video fmtp under another m= line
        fmtp_line = next((m.fmtp[pt] for m in session.media if pt in m.fmtp), "")
    fmtp = parse_fmtp(fmtp_line)
    rate_text = media.rtpmap[pt].split("/")[1] if "/" in media.rtpmap[pt] else ""
    aggregate = resolve_control(base, session.control)
    mode_text = fmtp.get("packetization-mode", "0")
    profile = fmtp.get("profile-level-id")
    return H264Stream(
        payload_type=pt,
        clock_rate=int(rate_text) if rate_text.strip().isdigit() else _H264_CLOCK_RATE,
        control_url=resolve_control(base, media.control) if media.control else aggregate,
        aggregate_url=aggregate,
        packetization_mode=int(mode_text) if mode_text.isdigit() else 0,
        profile_level_id=profile.lower() if profile and len(profile) == 6 else None,
        parameter_sets=decode_sprop_parameter_sets(fmtp.get("sprop-parameter-sets", "")),
    )

"""aiortc and aioice internals the fast send path (gateway/webrtc/fastsend.py) relies on.

aiortc's RTCRtpSender has no public way to send frames that are already RTP payloads,
to answer a viewer's PLI/FIR other than by flagging an encoder, or to send through
something faster than its per-packet coroutine chain. The fast path therefore replaces
three of a sender's methods, keeps the sender's own counters (RTCP sender reports,
getStats) up to date, and sends on the ICE pair and SRTP session aiortc negotiated.
Every name that takes is here, in REQUIRED, and `missing()` looks for each of them
(methods and their parameters, instance fields, the DTLS transport's fields, aioice's
nominated pairs). If any is gone, camgate sends through aiortc's public API instead
(gateway/webrtc/passthrough.py: a track whose recv() returns the camera's H.264).

The RTCP tap (RTCP_TAP_REQUIRED, `tap_rtcp`) lets the congestion estimate
(gateway/webrtc/congestion.py) read what a viewer reports about our video stream, on
either send path: aiortc hands each RTCP packet for a sender to its _handle_rtcp_packet,
which the tap wraps, and keeps the round-trip time it measures in a private field.
Without them only the estimate is off (the viewer stays on the stream it is given).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.codecs.h264 import H264Encoder
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpSrPacket,
    unpack_remb_fci,
)

ICE_COMPONENT = 1  # RTP (aiortc multiplexes RTCP on it)

# Methods replaced on each sender, with the parameters aiortc calls them with.
SENDER_HOOKS: dict[str, list[str]] = {
    "_run_rtp": ["self", "codec"],  # the RTP send loop, started by send()
    "_retransmit": ["self", "sequence_number"],  # a viewer's NACK
    "_send_keyframe": ["self"],  # a viewer's PLI/FIR
}
# Name-mangled sender fields the loop reads or keeps up to date.
SENDER_FIELDS = (
    "rtp_started",
    "rtp_exited",
    "mid",
    "rtp_header_extensions_map",
    "rtx_payload_type",
    "ntp_timestamp",
    "rtp_timestamp",
    "octet_count",
    "packet_count",
)
SENDER_ATTRIBUTES = ("_ssrc", "_rtx_ssrc")
DTLS_ATTRIBUTES = (
    "_state",
    "_tx_srtp",
    "_ssl",
    "_srtp_profiles",
    "_role",
    "_RTCDtlsTransport__tx_packets",
    "_RTCDtlsTransport__tx_bytes",
)
SRTP_PROFILE_ATTRIBUTES = (
    "openssl_profile",
    "libsrtp_profile",
    "key_length",
    "salt_length",
    "get_key_and_salt",
)
# RFC 5764 4.2: the label both ends export the SRTP keying material with.
EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"

REQUIRED = (
    *(f"RTCRtpSender.{name}()" for name in SENDER_HOOKS),
    *(f"RTCRtpSender.__{name}" for name in SENDER_FIELDS),
    *(f"RTCRtpSender.{name}" for name in SENDER_ATTRIBUTES),
    *(f"RTCDtlsTransport.{name}" for name in DTLS_ATTRIBUTES),
    *(f"SRTPProtectionProfile.{name}" for name in SRTP_PROFILE_ATTRIBUTES),
    "RTCIceTransport._connection",
    "aioice.Connection._nominated",
    "H264Encoder._packetize()",
)


def _field(name: str) -> str:
    return f"_RTCRtpSender__{name}"


_NTP, _RTP, _OCTETS, _PACKETS = (
    _field(n) for n in ("ntp_timestamp", "rtp_timestamp", "octet_count", "packet_count")
)


def missing(sender: RTCRtpSender) -> list[str]:
    """What of REQUIRED this aiortc lacks, looked for on `sender` (of a peer connection
    not yet negotiated) and its transports."""
    absent: list[str] = []
    for name, parameters in SENDER_HOOKS.items():
        method = getattr(type(sender), name, None)
        if not callable(method) or list(inspect.signature(method).parameters) != parameters:
            absent.append(f"RTCRtpSender.{name}()")
    absent += [f"RTCRtpSender.__{n}" for n in SENDER_FIELDS if not hasattr(sender, _field(n))]
    absent += [f"RTCRtpSender.{n}" for n in SENDER_ATTRIBUTES if not hasattr(sender, n)]
    dtls = sender.transport
    absent += [f"RTCDtlsTransport.{n}" for n in DTLS_ATTRIBUTES if not hasattr(dtls, n)]
    for profile in getattr(dtls, "_srtp_profiles", None) or [None]:
        absent += [
            f"SRTPProtectionProfile.{n}"
            for n in SRTP_PROFILE_ATTRIBUTES
            if not hasattr(profile, n) and f"SRTPProtectionProfile.{n}" not in absent
        ]
    connection = getattr(dtls.transport, "_connection", None)
    if connection is None:
        absent.append("RTCIceTransport._connection")
    elif not isinstance(getattr(connection, "_nominated", None), dict):
        absent.append("aioice.Connection._nominated")
    if not callable(getattr(H264Encoder, "_packetize", None)):
        absent.append("H264Encoder._packetize()")
    return absent


async def probe() -> list[str]:
    """`missing()` on a throwaway peer connection's sender."""
    pc = RTCPeerConnection()
    try:
        return missing(pc.addTransceiver("video", direction="sendonly").sender)
    finally:
        await pc.close()


# -- the sender ------------------------------------------------------------------------


def hook_sender(
    sender: RTCRtpSender,
    *,
    run_rtp: Callable[[Any], Awaitable[None]],
    retransmit: Callable[[int], Awaitable[None]],
    send_keyframe: Callable[[], None],
) -> None:
    """Replace the sender's RTP loop, NACK answer and PLI/FIR answer."""
    sender._run_rtp = run_rtp  # type: ignore[method-assign,assignment]
    sender._retransmit = retransmit  # type: ignore[method-assign,assignment]
    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]


def sender_field(sender: RTCRtpSender, name: str) -> Any:
    """One of SENDER_FIELDS."""
    return getattr(sender, _field(name))


def record_sent(
    sender: RTCRtpSender, *, ntp_timestamp: int, rtp_timestamp: int, octets: int, packets: int
) -> None:
    """What aiortc's own loop keeps for RTCP sender reports and getStats()."""
    setattr(sender, _NTP, ntp_timestamp)
    setattr(sender, _RTP, rtp_timestamp)
    setattr(sender, _OCTETS, octets)
    setattr(sender, _PACKETS, packets)


def ssrc(sender: RTCRtpSender) -> int:
    return int(sender._ssrc)


def rtx_ssrc(sender: RTCRtpSender) -> int:
    return int(sender._rtx_ssrc)


def packetize(nals: Sequence[bytes]) -> list[bytes]:
    """RFC 6184 payloads (STAP-A/FU-A, packetization-mode 1), as aiortc sends them."""
    return H264Encoder._packetize(nals)  # type: ignore[no-any-return]


# -- the DTLS and ICE transports -------------------------------------------------------


def dtls_connected(dtls: Any) -> bool:
    state = dtls._state
    # Per packet: the state seen connected before is compared by identity (an enum's
    # .name is a descriptor call).
    if state is _connected_state[0]:
        return True
    if state.name != "CONNECTED":
        return False
    _connected_state[0] = state
    return True


_connected_state: list[Any] = [None]


def route(dtls: Any) -> tuple[Any, Any] | str:
    """(the ICE candidate pair RTP goes over (aioice's CandidatePair), the pylibsrtp
    session aiortc protects this viewer's RTP with) of a connected transport, in one
    call (it is checked per packet), or why there is none yet."""
    state = dtls._state
    if state is not _connected_state[0] and not dtls_connected(dtls):
        return "DTLS is not connected"
    pair = dtls.transport._connection._nominated.get(ICE_COMPONENT)
    if pair is None:
        return "no ICE pair selected"
    return pair, dtls._tx_srtp


def on_route(dtls: Any, known: tuple[Any, Any] | None) -> bool:
    """route(dtls) == known, without building a tuple (it runs per packet per viewer)."""
    if known is None or (dtls._state is not _connected_state[0] and not dtls_connected(dtls)):
        return False
    return bool(
        dtls.transport._connection._nominated.get(ICE_COMPONENT) is known[0]
        and dtls._tx_srtp is known[1]
    )


def nack_negotiated(codec: Any) -> bool:
    """The viewer takes NACKs for this codec (aiortc negotiates them for video only)."""
    return any(
        feedback.type == "nack" and not feedback.parameter
        for feedback in getattr(codec, "rtcpFeedback", None) or ()
    )


def count_sent(dtls: Any, packets: int, octets: int) -> None:
    """The DTLS transport's own counters (its getStats)."""
    dtls._RTCDtlsTransport__tx_packets += packets
    dtls._RTCDtlsTransport__tx_bytes += octets


def sending_key(dtls: Any) -> tuple[int, bytes]:
    """(libsrtp profile, master key and salt) the DTLS transport sends with, exported
    from the DTLS connection again as aiortc does after the handshake (aiortc does not
    keep it). Raises ConnectionError if the transport is not connected."""
    connection = dtls._ssl
    if connection is None or not dtls_connected(dtls):
        raise ConnectionError("DTLS is not connected")
    selected = connection.get_selected_srtp_profile()
    for profile in dtls._srtp_profiles:
        if profile.openssl_profile == selected:
            break
    else:
        raise ConnectionError("no SRTP profile was negotiated")
    material = connection.export_keying_material(
        EXPORTER_LABEL, 2 * (profile.key_length + profile.salt_length)
    )
    # RFC 5764 4.2: client key, server key, client salt, server salt.
    side = 1 if dtls._role == "server" else 0
    return int(profile.libsrtp_profile), bytes(profile.get_key_and_salt(material, side))


# -- the RTCP tap (gateway/webrtc/congestion.py) ----------------------------------------

RTCP_HOOK = ("_handle_rtcp_packet", ["self", "packet"])  # aiortc's RTCP entry, per sender
RTCP_TAP_REQUIRED = ("RTCRtpSender._handle_rtcp_packet()", "RTCRtpSender.__rtt")


def rtcp_tap_missing(sender: RTCRtpSender) -> list[str]:
    """What of RTCP_TAP_REQUIRED this aiortc lacks."""
    absent: list[str] = []
    name, parameters = RTCP_HOOK
    method = getattr(type(sender), name, None)
    if not callable(method) or list(inspect.signature(method).parameters) != parameters:
        absent.append(RTCP_TAP_REQUIRED[0])
    if not hasattr(sender, _field("rtt")):
        absent.append(RTCP_TAP_REQUIRED[1])
    return absent


async def probe_rtcp_tap() -> list[str]:
    """`rtcp_tap_missing()` on a throwaway peer connection's sender."""
    pc = RTCPeerConnection()
    try:
        return rtcp_tap_missing(pc.addTransceiver("video", direction="sendonly").sender)
    finally:
        await pc.close()


def tap_rtcp(sender: RTCRtpSender, on_packet: Callable[[Any], None]) -> Callable[[], None]:
    """Call `on_packet` with every RTCP packet aiortc routes to `sender`, after aiortc has
    handled it (so its RTT is up to date). Returns the function that removes the tap."""
    handle = sender._handle_rtcp_packet

    async def tapped(packet: Any) -> None:
        await handle(packet)
        on_packet(packet)

    sender._handle_rtcp_packet = tapped  # type: ignore[method-assign]

    def untap() -> None:
        if sender.__dict__.get(RTCP_HOOK[0]) is tapped:
            del sender.__dict__[RTCP_HOOK[0]]

    return untap


def rtx_ssrc_or_none(sender: RTCRtpSender) -> int | None:
    """The RTX stream's SSRC (it exists whether or not RTX was negotiated), if known."""
    value = getattr(sender, "_rtx_ssrc", None)
    return int(value) if value is not None else None


def rtt_ms(sender: RTCRtpSender) -> float | None:
    """aiortc's smoothed round-trip time from the reports' LSR/DLSR, None until measured."""
    rtt = getattr(sender, _field("rtt"), None)
    return None if rtt is None else float(rtt) * 1000


def octets_sent(sender: RTCRtpSender) -> int:
    """RTP payload octets sent so far, on either send path (aiortc's loop counts them;
    the fast path keeps the same counter through `record_sent`)."""
    return int(getattr(sender, _field("octet_count"), 0))


def report_blocks(packet: Any, ssrc: int) -> list[tuple[int, int]]:
    """(fraction lost, jitter) of each report block about `ssrc` in a RR or SR."""
    if not isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
        return []
    return [(r.fraction_lost, r.jitter) for r in packet.reports if r.ssrc == ssrc]


def remb_bps(packet: Any, ssrc: int) -> int | None:
    """The bitrate of a REMB that covers `ssrc`, else None."""
    if not isinstance(packet, RtcpPsfbPacket) or packet.fmt != RTCP_PSFB_APP:
        return None
    try:
        bitrate, ssrcs = unpack_remb_fci(packet.fci)
    except ValueError:
        return None
    return int(bitrate) if ssrc in ssrcs else None

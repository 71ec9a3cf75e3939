"""The SRTP key and profile aiortc's DTLS transport derived for sending (RFC 5764 4.2).

A send worker process protects a viewer's RTP with a libsrtp session of its own, made
from the same master key and salt as the gateway's session (which keeps protecting
RTCP: SRTP and SRTCP keep separate keys and counters, so the two never collide). aiortc
does not keep the key, so it is exported from the DTLS connection again, as aiortc
itself does right after the handshake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pylibsrtp import Policy, Session

EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"


@dataclass(frozen=True)
class SrtpKey:
    profile: int  # libsrtp's profile number (Policy.SRTP_PROFILE_*)
    key_and_salt: bytes = b""

    def __repr__(self) -> str:  # never print key material
        return f"SrtpKey(profile={self.profile})"

    def sending_session(self) -> Session:
        """A libsrtp session that protects exactly as the DTLS transport's own would."""
        policy = Policy(
            key=self.key_and_salt, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=self.profile
        )
        policy.allow_repeat_tx = True  # retransmissions repeat a packet index
        policy.window_size = 1024
        return Session(policy)


def sending_key(dtls: Any) -> SrtpKey:
    """The key aiortc's RTCDtlsTransport `dtls` sends with. Raises ConnectionError if the
    transport is not connected or does not look like the aiortc this was written for."""
    connection = getattr(dtls, "_ssl", None)
    if connection is None or dtls._state.name != "CONNECTED":
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
    return SrtpKey(profile.libsrtp_profile, profile.get_key_and_salt(material, side))

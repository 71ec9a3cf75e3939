"""The SRTP key a send worker protects one viewer's RTP with.

A send worker process protects a viewer's RTP with a libsrtp session of its own, made
from the same master key and salt as the gateway's session (which keeps protecting
RTCP: SRTP and SRTCP keep separate keys and counters, so the two never collide). The
gateway exports the key from aiortc's DTLS connection (gateway/compat/aiortc.py,
`sending_key`) and hands it over with the viewer.
"""

from __future__ import annotations

from dataclasses import dataclass

from pylibsrtp import Policy, Session


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

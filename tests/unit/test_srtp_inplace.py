"""SRTP in place gives the very bytes pylibsrtp's own protect() gives, and a receiver
with the same keys gets the packet back. Fails if a pylibsrtp upgrade moves what the
send loop relies on (gateway/sendpath/srtp_inplace.py)."""

from __future__ import annotations

import os

import cffi
import pytest
from pylibsrtp import Policy, Session

from gateway.sendpath.srtp_inplace import (
    SRTP_MAX_TRAILER_LEN,
    InPlaceProtector,
    SrtpError,
    inplace_supported,
)

KEY = os.urandom(30)


def _session(direction: int) -> Session:
    policy = Policy(key=KEY, ssrc_type=direction)
    policy.allow_repeat_tx = True
    return Session(policy)


def _rtp(sequence: int, payload: bytes) -> bytes:
    return (
        bytes([0x80, 102]) + sequence.to_bytes(2, "big") + bytes(4) + b"\x00\x00\x04\xd2" + payload
    )


def test_protects_like_pylibsrtp_and_unprotects() -> None:
    ours, theirs = _session(Policy.SSRC_ANY_OUTBOUND), _session(Policy.SSRC_ANY_OUTBOUND)
    receiver = _session(Policy.SSRC_ANY_INBOUND)
    assert inplace_supported(ours) is None
    protector = InPlaceProtector(ours)
    ffi = cffi.FFI()
    buffer = ffi.new("char[]", 1200 + SRTP_MAX_TRAILER_LEN)
    view = ffi.buffer(buffer)
    for sequence in range(1, 40):
        packet = _rtp(sequence, os.urandom(sequence * 30))
        view[0 : len(packet)] = packet
        length = protector.protect(buffer, len(packet))
        protected = bytes(view[0:length])
        assert length > len(packet)
        assert protected == theirs.protect(packet)
        assert receiver.unprotect(protected) == packet


def test_a_packet_libsrtp_refuses_is_an_error() -> None:
    protector = InPlaceProtector(_session(Policy.SSRC_ANY_OUTBOUND))
    buffer = cffi.FFI().new("char[]", 64)
    with pytest.raises(SrtpError):
        protector.protect(buffer, 4)  # shorter than an RTP header


def test_a_session_without_the_internals_is_reported() -> None:
    assert inplace_supported(object()) == "pylibsrtp.Session._srtp"

"""pylibsrtp internals: the libsrtp session pointer and `srtp_protect` (SRTP in place).

pylibsrtp's `Session.protect(bytes) -> bytes` copies every packet in and out; the send
path protects a packet where it lies instead (gateway/sendpath/srtp_inplace.py), which
needs the session's libsrtp context (`Session._srtp`) and libsrtp's `srtp_protect`
(`pylibsrtp.lib`). Without them the send path uses `Session.protect`.
"""

from __future__ import annotations

from typing import Any

import pylibsrtp

REQUIRED = ("pylibsrtp.Session._srtp", "pylibsrtp.lib.srtp_protect")


def missing(session: Any) -> list[str]:
    """What of REQUIRED this pylibsrtp lacks, checked on a live `session`."""
    absent = []
    if not hasattr(session, "_srtp"):
        absent.append("pylibsrtp.Session._srtp")
    if not callable(getattr(getattr(pylibsrtp, "lib", None), "srtp_protect", None)):
        absent.append("pylibsrtp.lib.srtp_protect")
    return absent


def libsrtp_context(session: pylibsrtp.Session) -> Any:
    """The `srtp_t` of `session` (valid while `session` lives)."""
    return session._srtp[0]


def srtp_protect() -> Any:
    """libsrtp's `srtp_protect(context, pointer, int *length)`."""
    return pylibsrtp.lib.srtp_protect

"""SRTP-protect an RTP packet where it lies, in a C buffer, with an existing libsrtp session.

pylibsrtp's `Session.protect(bytes) -> bytes` copies the packet into its own buffer and
the result out again and allocates a length cell each call: about half of its cost for
a 1,200-byte packet. The send loop already builds each packet in a C buffer it owns,
so it calls libsrtp's `srtp_protect` on that buffer directly, with the session aiortc's
DTLS transport negotiated. What this needs of pylibsrtp's internals is reached through
gateway/compat/srtp.py and checked by `inplace_supported()` (and at start-up).
"""

from __future__ import annotations

from typing import Any

import cffi
import pylibsrtp

from gateway.compat import srtp as srtp_compat

SRTP_MAX_TRAILER_LEN = 16 + 128  # libsrtp's, as pylibsrtp reserves it


class SrtpError(Exception):
    """libsrtp refused to protect a packet."""


def inplace_supported(session: Any) -> str | None:
    """None if `session` can be used in place, else what is missing."""
    absent = srtp_compat.missing(session)
    return ", ".join(absent) if absent else None


class InPlaceProtector:
    """`protect(pointer, length) -> protected length` for one libsrtp session."""

    _ffi = cffi.FFI()

    def __init__(self, session: pylibsrtp.Session) -> None:
        self.session = session  # keeps libsrtp's context alive while we hold its pointer
        self._context = srtp_compat.libsrtp_context(session)
        self._srtp_protect = srtp_compat.srtp_protect()
        self._length = self._ffi.new("int *")

    def raw(self) -> tuple[Any, Any, Any]:
        """(srtp_protect, the session's context, the length cell): for a caller's hot
        loop, `srtp_protect(context, pointer, cell)` with cell[0] = length."""
        return self._srtp_protect, self._context, self._length

    def protect(self, pointer: Any, length: int) -> int:
        """Protect the `length`-byte RTP packet at `pointer` (a `char *` with room for
        SRTP_MAX_TRAILER_LEN more bytes); returns its protected length."""
        cell = self._length
        cell[0] = length
        status = self._srtp_protect(self._context, pointer, cell)
        if status:
            raise SrtpError(f"srtp_protect failed with status {status}")
        return int(cell[0])

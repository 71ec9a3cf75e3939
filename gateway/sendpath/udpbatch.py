"""Many UDP datagrams to one address in one system call (Linux `sendmmsg`).

The RTP send loop writes a frame's packets for one viewer straight into the slots of a
C buffer (SRTP protects them there, in place) and hands them to the kernel together:
one kernel entry per frame and viewer instead of one per packet, and no Python bytes
object per packet. Python's socket module has no `sendmmsg`, so it is called through
cffi in ABI mode (no compiler needed). Where it is missing (not Linux), `batch_sender()`
returns None and the caller sends one datagram at a time.
"""

from __future__ import annotations

import errno
import functools
import socket
import struct
from typing import Any

import cffi

SLOT_SIZE = 2048  # an RTP packet (<= ~1,250 bytes) plus libsrtp's largest trailer
DEFAULT_CAPACITY = 32  # datagrams per system call: a P-frame fits, an IDR takes a few

_DECLARATIONS = """
struct iovec { void *iov_base; size_t iov_len; };
struct msghdr {
    void *msg_name; uint32_t msg_namelen;
    struct iovec *msg_iov; size_t msg_iovlen;
    void *msg_control; size_t msg_controllen;
    int msg_flags;
};
struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; };
int sendmmsg(int sockfd, struct mmsghdr *msgvec, unsigned int vlen, int flags);
"""


@functools.cache
def _libc() -> tuple[cffi.FFI, Any] | None:
    ffi = cffi.FFI()
    ffi.cdef(_DECLARATIONS)
    try:
        libc = ffi.dlopen(None)
        libc.sendmmsg  # noqa: B018 - raises AttributeError where libc lacks it
    except (OSError, AttributeError):
        return None
    return ffi, libc


def sockaddr(family: int, address: tuple[Any, ...]) -> bytes | None:
    """The C `sockaddr_in`/`sockaddr_in6` for a numeric (host, port), or None."""
    host, port = address[0], address[1]
    try:
        found = socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST)
        info: tuple[Any, ...] = found[0][4]
    except (OSError, UnicodeError, IndexError):
        return None
    # sa_family_t is host-endian, the rest network order.
    if family == socket.AF_INET:
        return struct.pack("=H", family) + struct.pack(
            "!H4s8x", info[1], socket.inet_pton(family, info[0])
        )
    if family == socket.AF_INET6:
        return (
            struct.pack("=H", family)
            + struct.pack("!HI16s", info[1], info[2], socket.inet_pton(family, info[0]))
            + struct.pack("=I", info[3])
        )
    return None


class BatchSender:
    """Slots for up to `capacity` datagrams and the `sendmmsg` call that sends them."""

    def __init__(self, ffi: cffi.FFI, libc: Any, capacity: int) -> None:
        self.capacity = capacity
        self._ffi = ffi
        self._sendmmsg = libc.sendmmsg
        self._memory = ffi.new("char[]", SLOT_SIZE * capacity)
        self.view = memoryview(ffi.buffer(self._memory))  # writable, slot i at i * SLOT_SIZE
        self.slots = [self._memory + i * SLOT_SIZE for i in range(capacity)]  # char *
        self.iov = ffi.new("struct iovec[]", capacity)  # iov[i].iov_len: slot i's length
        self._messages = ffi.new("struct mmsghdr[]", capacity)
        self._name = ffi.new("char[]", 28)  # fits sockaddr_in and sockaddr_in6
        self.destination: tuple[Any, ...] | None = None
        for i in range(capacity):
            self.iov[i].iov_base = self.slots[i]
            header = self._messages[i].msg_hdr
            header.msg_name = self._name
            header.msg_iov = self.iov + i
            header.msg_iovlen = 1

    def aim(self, family: int, address: tuple[Any, ...]) -> bool:
        """Send to `address` from now on; False if it cannot be expressed here."""
        raw = sockaddr(family, address)
        if raw is None:
            self.destination = None
            return False
        self._ffi.memmove(self._name, raw, len(raw))
        for i in range(self.capacity):
            self._messages[i].msg_hdr.msg_namelen = len(raw)
        self.destination = address
        return True

    def set_length(self, slot: int, length: int) -> None:
        self.iov[slot].iov_len = length

    def length(self, slot: int) -> int:
        return int(self.iov[slot].iov_len)

    def send(self, fd: int, count: int) -> int:
        """Send slots 0..count-1; how many went (fewer when the socket buffer is full).
        Raises OSError for anything but a full buffer."""
        sent = self._sendmmsg(fd, self._messages, count, 0)
        if sent >= 0:
            return int(sent)
        code = self._ffi.errno
        if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
            return 0
        raise OSError(code, f"sendmmsg: {errno.errorcode.get(code, code)}")

    def datagram(self, slot: int) -> bytes:
        start = slot * SLOT_SIZE
        return bytes(self.view[start : start + self.length(slot)])


def batch_sender(capacity: int = DEFAULT_CAPACITY) -> BatchSender | None:
    """A BatchSender, or None where the C library has no `sendmmsg`."""
    found = _libc()
    if found is None:
        return None
    return BatchSender(*found, capacity)

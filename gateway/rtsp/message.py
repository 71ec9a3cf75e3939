"""RTSP/1.0 messages (RFC 2326): requests out, and an incremental parser for what comes
back on the control connection, which is responses, `$`-interleaved RTP/RTCP frames
(RFC 2326 10.12) and the odd request from the server, all mixed in one byte stream.

Pure: no I/O. Header and body sizes are bounded so a broken or hostile peer cannot
make us buffer without end; anything that is not RTSP raises ValueError.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from gateway import __version__

USER_AGENT = f"camgate/{__version__}"
RTSP_VERSION = "RTSP/1.0"

MAX_HEADER_BYTES = 64 * 1024  # status line and headers of one message
MAX_BODY_BYTES = 1024 * 1024  # an SDP is a few KB; a megabyte is already absurd
MAX_METHOD_LENGTH = 32

_STATUS_LINE = re.compile(r"RTSP/(\d+)\.(\d+) +(\d{3})(?: +(.*))?$")
_REQUEST_LINE = re.compile(r"([A-Z_]{1,32}) +(\S+) +RTSP/\d+\.\d+$")
_TOKEN_START = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ_")


class Headers:
    """Header fields in order, names case-insensitive, repeats kept (WWW-Authenticate)."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = list(items)

    def get(self, name: str, default: str | None = None) -> str | None:
        lower = name.lower()
        for key, value in self._items:
            if key.lower() == lower:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        lower = name.lower()
        return [value for key, value in self._items if key.lower() == lower]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclass(frozen=True)
class RtspResponse:
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def cseq(self) -> int | None:
        return _parse_cseq(self.headers.get("CSeq"))

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class RtspRequest:
    """A request the server sent us (some send OPTIONS or GET_PARAMETER as keepalives,
    or ANNOUNCE/REDIRECT); the client answers it or ignores it."""

    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def cseq(self) -> int | None:
        return _parse_cseq(self.headers.get("CSeq"))


@dataclass(frozen=True, slots=True)
class InterleavedFrame:
    channel: int
    data: bytes


RtspMessage = RtspResponse | RtspRequest | InterleavedFrame


def _parse_cseq(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def build_request(
    method: str,
    uri: str,
    cseq: int,
    headers: Iterable[tuple[str, str]] = (),
    *,
    session: str | None = None,
    body: bytes = b"",
    user_agent: str = USER_AGENT,
) -> bytes:
    """One request, ready for the wire. `uri` must carry no credentials."""
    lines = [f"{method} {uri} {RTSP_VERSION}", f"CSeq: {cseq}", f"User-Agent: {user_agent}"]
    if session:
        lines.append(f"Session: {session}")
    for name, value in headers:
        _check_header(name, value)
        lines.append(f"{name}: {value}")
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def build_response(status: int, reason: str, cseq: int | None, session: str | None = None) -> bytes:
    """Our answer to a request from the server."""
    lines = [f"{RTSP_VERSION} {status} {reason}"]
    if cseq is not None:
        lines.append(f"CSeq: {cseq}")
    if session:
        lines.append(f"Session: {session}")
    lines.append(f"User-Agent: {USER_AGENT}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def build_interleaved(channel: int, data: bytes) -> bytes:
    if not 0 <= channel <= 255 or len(data) > 0xFFFF:
        raise ValueError("interleaved frame out of range")
    return bytes((0x24, channel)) + len(data).to_bytes(2, "big") + data


def _check_header(name: str, value: str) -> None:
    # A CR or LF from a server-supplied value (nonce, session id) would inject headers.
    if any(c in name + value for c in "\r\n") or not name:
        raise ValueError("header name or value with a line break")


class RtspStreamParser:
    """Bytes from the control connection -> RtspResponse | RtspRequest | InterleavedFrame.

    Feed it whatever the socket returned, in any fragments; it returns every message
    that is complete and keeps the rest. A malformed message raises ValueError and
    the parser must then be discarded (the stream has lost its framing).
    """

    def __init__(
        self, max_header_bytes: int = MAX_HEADER_BYTES, max_body_bytes: int = MAX_BODY_BYTES
    ) -> None:
        self._buf = bytearray()
        self._max_header = max_header_bytes
        self._max_body = max_body_bytes

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[RtspMessage]:
        self._buf += data
        out: list[RtspMessage] = []
        pos = 0
        try:
            while True:
                message, pos = self._next(pos)
                if message is None:
                    break
                out.append(message)
        finally:
            del self._buf[:pos]
        return out

    def _next(self, pos: int) -> tuple[RtspMessage | None, int]:
        buf = self._buf
        # Stray line ends between messages are common (some servers end bodies with an
        # extra CRLF not counted in Content-Length): skip them.
        while pos < len(buf) and buf[pos] in (0x0D, 0x0A):
            pos += 1
        if pos >= len(buf):
            return None, pos
        if buf[pos] == 0x24:  # '$'
            return self._interleaved(pos)
        if buf[pos] in _TOKEN_START:
            return self._text_message(pos)
        raise ValueError(f"not RTSP: unexpected byte 0x{buf[pos]:02x} in the stream")

    def _interleaved(self, pos: int) -> tuple[InterleavedFrame | None, int]:
        buf = self._buf
        if len(buf) - pos < 4:
            return None, pos
        size = (buf[pos + 2] << 8) | buf[pos + 3]
        end = pos + 4 + size
        if len(buf) < end:
            return None, pos
        return InterleavedFrame(buf[pos + 1], bytes(buf[pos + 4 : end])), end

    def _text_message(self, pos: int) -> tuple[RtspResponse | RtspRequest | None, int]:
        buf = self._buf
        head_end, sep_len = _find_header_end(buf, pos)
        if head_end == -1:
            self._check_partial_start(pos)
            if len(buf) - pos > self._max_header:
                raise ValueError("RTSP header too large")
            return None, pos
        if head_end - pos > self._max_header:
            raise ValueError("RTSP header too large")
        lines = bytes(buf[pos:head_end]).decode("latin-1").replace("\r\n", "\n").split("\n")
        headers = _parse_headers(lines[1:])
        length = _content_length(headers, self._max_body)
        body_start = head_end + sep_len
        if len(buf) < body_start + length:
            return None, pos
        body = bytes(buf[body_start : body_start + length])
        return _start_line(lines[0].rstrip("\r"), headers, body), body_start + length

    def _check_partial_start(self, pos: int) -> None:
        """Fail early on garbage rather than buffering 64 KB of it first."""
        first = bytes(self._buf[pos : pos + MAX_METHOD_LENGTH + 1])
        line_end = first.find(b" ")
        token = first if line_end == -1 else first[:line_end]
        if token.startswith(b"RTSP/") or b"RTSP/".startswith(token):
            return
        if len(token) > MAX_METHOD_LENGTH or not all(b in _TOKEN_START for b in token):
            raise ValueError("not RTSP: garbage at the start of a message")


def _find_header_end(buf: bytearray, pos: int) -> tuple[int, int]:
    """Index of the blank line ending the header and its length; (-1, 0) if not there.
    Bare-LF line ends are accepted: some camera firmwares send them."""
    crlf = buf.find(b"\r\n\r\n", pos)
    lf = buf.find(b"\n\n", pos)
    if lf != -1 and (crlf == -1 or lf < crlf):
        return lf, 2
    if crlf != -1:
        return crlf, 4
    return -1, 0


def _parse_headers(lines: list[str]) -> Headers:
    items: list[tuple[str, str]] = []
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            continue
        if line[0] in " \t" and items:  # obsolete line folding: continues the last value
            name, value = items[-1]
            items[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ValueError("malformed RTSP header line")
        items.append((name.strip(), value.strip()))
    return Headers(items)


def _content_length(headers: Headers, limit: int) -> int:
    text = headers.get("Content-Length")
    if text is None:
        return 0
    if not text.strip().isdigit():
        raise ValueError("invalid Content-Length")
    length = int(text)
    if length > limit:
        raise ValueError(f"RTSP body of {length} bytes is over the limit")
    return length


def _start_line(line: str, headers: Headers, body: bytes) -> RtspResponse | RtspRequest:
    status = _STATUS_LINE.match(line)
    if status is not None:
        return RtspResponse(int(status.group(3)), (status.group(4) or "").strip(), headers, body)
    request = _REQUEST_LINE.match(line)
    if request is not None:
        return RtspRequest(request.group(1), request.group(2), headers, body)
    raise ValueError("malformed RTSP start line")

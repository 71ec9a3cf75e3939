"""rtsp:// and rtsps:// URLs: split off the credentials, and keep them out of sight.

Users paste camera URLs as the vendor prints them, with passwords unescaped
("admin:p@ss/w#rd@cam"), so the user info runs to the last `@`; the price is that an
`@` in the path must be percent-encoded (`%40`), which real camera paths never need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import unquote

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322}

# Some cameras (XMeye and clones) take credentials in the path or query:
# rtsp://cam/user=admin_password=secret_channel=1_stream=0.sdp or ?password=secret
_SECRET_PARAMS = re.compile(r"(?i)((?:^|[?&;/_])(?:password|passwd|pwd|pass)=)[^&;/?#_]*")
_SCHEME = re.compile(r"(?i)^([a-z][a-z0-9+.-]*)://")


@dataclass(frozen=True, repr=False)
class RtspUrl:
    """A parsed camera URL. `str()` and `repr()` never show the password."""

    scheme: str  # "rtsp" or "rtsps"
    host: str  # without IPv6 brackets
    port: int
    path: str  # path, query and all: at least "/"
    public: str  # the URL as given, minus the user info: what goes on the wire
    username: str | None = None
    password: str | None = None

    @property
    def tls(self) -> bool:
        return self.scheme == "rtsps"

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def with_location(self, location: str) -> RtspUrl:
        """The target of a redirect; keeps our credentials unless it carries its own."""
        target = parse_url(location)
        if target.username is None and target.host == self.host:
            return replace(target, username=self.username, password=self.password)
        return target

    def __str__(self) -> str:
        return redact(self.public)

    def __repr__(self) -> str:
        return f"RtspUrl({str(self)!r})"


def parse_url(url: str) -> RtspUrl:
    """Parse an rtsp(s) URL; ValueError (whose message never holds the URL) if it is not one."""
    match = _SCHEME.match(url.strip())
    if match is None or match.group(1).lower() not in DEFAULT_PORTS:
        raise ValueError("not an rtsp:// or rtsps:// URL")
    scheme = match.group(1).lower()
    rest = url.strip()[match.end() :]
    authority, path = _split_authority(rest)
    username = password = None
    if "@" in authority:
        userinfo, authority = authority.rsplit("@", 1)
        user, sep, secret = userinfo.partition(":")
        username = unquote(user)
        password = unquote(secret) if sep else None
    host, port = _split_host_port(authority, DEFAULT_PORTS[scheme])
    public = f"{scheme}://{authority}{path or '/'}"
    return RtspUrl(scheme, host, port, path or "/", public, username, password)


def strip_credentials(url: str) -> str:
    """`url` without its user info, otherwise unchanged (for request lines)."""
    match = _SCHEME.match(url.strip())
    if match is None:
        return url.strip()
    authority, path = _split_authority(url.strip()[match.end() :])
    return f"{match.group(1)}://{authority.rsplit('@', 1)[-1]}{path}"


def _split_authority(rest: str) -> tuple[str, str]:
    """authority and path. The authority ends at the first / ? or # after the last @,
    so passwords with unescaped @ / ? # work; an @ in the path must be written %40."""
    at = rest.rfind("@")
    end = len(rest)
    for sep in "/?#":
        pos = rest.find(sep, at + 1)
        if pos != -1:
            end = min(end, pos)
    path = rest[end:]
    if path and path[0] != "/":
        path = "/" + path
    return rest[:end], path


def _split_host_port(authority: str, default_port: int) -> tuple[str, int]:
    if authority.startswith("["):  # [IPv6]:port
        close = authority.find("]")
        if close == -1:
            raise ValueError("unterminated IPv6 address in URL")
        host, tail = authority[1:close], authority[close + 1 :]
        if tail and not tail.startswith(":"):
            raise ValueError("bad characters after the IPv6 address in URL")
        port_text = tail[1:]
    else:
        host, _, port_text = authority.partition(":")
    if not host:
        raise ValueError("URL has no host")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError("URL has an invalid port")
    return host, int(port_text)


def redact(url: str) -> str:
    """`url` without user name, password, or password-like query/path parameters.

    Never raises: anything that is not a parsable URL is scrubbed textually.
    """
    text = url.strip()
    match = _SCHEME.match(text)
    if match is not None:
        authority, path = _split_authority(text[match.end() :])
        if "@" in authority:
            authority = authority.rsplit("@", 1)[1]
        text = f"{match.group(1).lower()}://{authority}{path}"
    elif "@" in text:  # not a URL we know: drop everything up to the last @
        text = text.rsplit("@", 1)[1]
    return _SECRET_PARAMS.sub(r"\1***", text)

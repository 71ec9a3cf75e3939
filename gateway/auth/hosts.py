"""Which Host names the gateway answers to: the guard against DNS rebinding.

A web page on evil.example can point its own name at the gateway's address (DNS
rebinding); the browser then talks to the gateway believing it is evil.example, with the
page's origin, so same-origin checks pass. The Host header still says evil.example: a
request for a name that is not the gateway's own is refused. Its own names: any IP
literal, `localhost` (and `*.localhost`), the machine's host name, `<hostname>.local`
(mDNS), and the names listed in `auth.allowed_hosts` (a reverse proxy's, a DNS name).
Pure: no I/O but the host name lookup.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

ANY = "*"  # in allowed_hosts: answer to every name (turns the guard off)


class HostPolicy:
    def __init__(
        self, allowed: Iterable[str] = (), hostname: Callable[[], str] = socket.gethostname
    ) -> None:
        self._allowed = frozenset(_normalise(name) for name in allowed)
        self._hostname = hostname

    def allows(self, host_header: str | None) -> bool:
        """Whether a request with this Host header is for this gateway. No Host at all
        (HTTP/1.0 tools) is not a browser: rebinding needs a browser."""
        if host_header is None or ANY in self._allowed:
            return True
        name = _host_name(host_header)
        if name is None:
            return False
        if _is_ip_literal(name) or name == "localhost" or name.endswith(".localhost"):
            return True
        if name in self._allowed:
            return True
        own = _normalise(self._hostname())  # read each time: the Pi may be renamed
        return bool(own) and name in (own, f"{own}.local", own.split(".")[0] + ".local")


def _host_name(header: str) -> str | None:
    """The name of a Host header without its port; None if it is not one."""
    header = header.strip()
    if header.startswith("["):  # [v6] or [v6]:port
        end = header.find("]")
        rest = header[end + 1 :] if end > 0 else None
        if rest is None or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return header[1:end].lower()
    name, _, port = header.rpartition(":") if header.count(":") == 1 else (header, "", "")
    if port and not port.isdigit():
        return None
    return _normalise(name)


def _normalise(name: str) -> str:
    return name.strip().lower().rstrip(".")


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return False
    return True

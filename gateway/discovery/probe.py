"""Send a WS-Discovery Probe from each chosen interface and collect the ONVIF devices.

    result = await probe(timeout=3, interfaces=["eth0"])
    for device in result.devices: print(device.address, device.name, device.snippet)

One UDP socket per interface address, bound to it (the replies come back unicast to that
address and port) with IP_MULTICAST_IF set, so the Probe leaves through that interface and
no other. TTL 1 keeps it on the local link. As SOAP-over-UDP asks, the Probe is sent twice
(same MessageID, 50-250 ms apart): devices answer once per MessageID.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

import ifaddr

from gateway.discovery.records import DiscoveredDevice, build_devices
from gateway.discovery.wsdiscovery import (
    MULTICAST_GROUP,
    PORT,
    DiscoveryParseError,
    ProbeMatch,
    build_probe,
    new_message_id,
    parse_probe_matches,
    show_datagram,
)

log = logging.getLogger("camgate.discovery")

DEFAULT_TIMEOUT = 3.0
MAX_REPLIES = 512  # a LAN with more ONVIF devices than this is not the use case
MAX_UNREADABLE = 8  # replies that could not be read, kept to show the user


class DiscoveryError(Exception):
    """The probe cannot run (e.g. an unknown interface name); the message is readable."""


@dataclass(frozen=True)
class Source:
    interface: str
    address: str  # IPv4


@dataclass(frozen=True)
class UnreadableReply:
    """A datagram that came back but could not be read as a device."""

    source: str  # the sender's IP address
    reason: str
    excerpt: str  # printable, cut short (show_datagram)

    def fields(self) -> tuple[str, str, str]:
        return self.source, self.reason, self.excerpt


@dataclass
class ProbeResult:
    devices: list[DiscoveredDevice]
    sources: list[Source]
    errors: list[str] = field(default_factory=list)  # per-interface send failures
    unreadable: list[UnreadableReply] = field(default_factory=list)


def ipv4_sources(
    interfaces: Sequence[str] | None = None, include_loopback: bool = False
) -> list[Source]:
    """IPv4 addresses to probe from: those of the named interfaces (a name, or one of the
    addresses), else of every interface but loopback (unless include_loopback, or loopback
    is all there is)."""
    adapters = ifaddr.get_adapters()
    found = [
        Source(adapter.name, ip.ip)
        for adapter in adapters
        for ip in adapter.ips
        if isinstance(ip.ip, str)  # IPv4 (ifaddr gives IPv6 as a tuple)
    ]
    if interfaces:
        chosen = []
        for wanted in interfaces:
            matches = [s for s in found if wanted in (s.interface, s.address)]
            if not matches:
                names = ", ".join(sorted({s.interface for s in found})) or "none"
                raise DiscoveryError(
                    f"no IPv4 interface {wanted!r} (IPv4 interfaces here: {names})"
                )
            chosen += [m for m in matches if m not in chosen]
        return chosen
    external = [s for s in found if not ipaddress.ip_address(s.address).is_loopback]
    # Loopback alone (a container, a test namespace) can still reach cameras on this host.
    return found if include_loopback or not external else external


class _Collector(asyncio.DatagramProtocol):
    def __init__(
        self,
        source: Source,
        message_id: str,
        replies: list[tuple[ProbeMatch, str]],
        errors: list[str],
        unreadable: list[UnreadableReply],
    ) -> None:
        self.source = source
        self.message_id = message_id
        self.replies = replies
        self.errors = errors
        self.unreadable = unreadable

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(self.replies) >= MAX_REPLIES:
            return
        try:
            matches = parse_probe_matches(data, self.message_id)
        except DiscoveryParseError as exc:
            reply = UnreadableReply(addr[0], str(exc), show_datagram(data))
            if len(self.unreadable) < MAX_UNREADABLE and reply not in self.unreadable:
                log.info("discovery: unreadable reply from %s: %s: %s", *reply.fields())
                self.unreadable.append(reply)
            return
        self.replies.extend((match, addr[0]) for match in matches)

    def error_received(self, exc: Exception) -> None:
        # asyncio reports a failed sendto() here, e.g. ENETUNREACH without a multicast route
        message = f"{self.source.interface} ({self.source.address}): {_reason(exc)}"
        if message not in self.errors:
            self.errors.append(message)


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) or repr(exc)


def _socket(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.bind((address, 0))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)  # cameras on this host
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def probe(
    timeout: float = DEFAULT_TIMEOUT,
    interfaces: Sequence[str] | None = None,
    *,
    include_loopback: bool = False,
    port: int = PORT,
) -> ProbeResult:
    """Probe for ONVIF devices for `timeout` seconds. Raises DiscoveryError for an unknown
    interface; send failures on single interfaces land in `errors`."""
    sources = ipv4_sources(interfaces, include_loopback)
    message_id = new_message_id()
    datagram = build_probe(message_id)
    replies: list[tuple[ProbeMatch, str]] = []
    errors: list[str] = []
    unreadable: list[UnreadableReply] = []
    transports: list[tuple[Source, asyncio.DatagramTransport]] = []
    loop = asyncio.get_running_loop()
    try:
        for source in sources:
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    functools.partial(_Collector, source, message_id, replies, errors, unreadable),
                    sock=_socket(source.address),
                )
            except OSError as exc:
                errors.append(f"{source.interface} ({source.address}): {_reason(exc)}")
                continue
            transports.append((source, transport))
        deadline = loop.time() + timeout
        for attempt in range(2):
            if attempt:
                await asyncio.sleep(min(random.uniform(0.05, 0.25), timeout / 4))
            for _, transport in transports:
                transport.sendto(datagram, (MULTICAST_GROUP, port))  # errors: error_received
        await asyncio.sleep(max(0.0, deadline - loop.time()))
    finally:
        for _, transport in transports:
            transport.close()
    return ProbeResult(build_devices(replies), sources, errors, unreadable)

"""WS-Discovery (SOAP-over-UDP, 239.255.255.250:3702) for the ONVIF test device.

`WsDiscoveryResponder` answers a Probe with a ProbeMatch naming the device's XAddr and the
scopes onvif://www.onvif.org/name/<name>, hardware/<model>, type/video_encoder (and type/ptz).
`probe()` is the client side, for tests.

Multicast on loopback, only ever inside the test's own network namespace:

    enable_loopback_multicast()   # ip link set lo multicast on
                                  # ip route add 239.0.0.0/8 dev lo
    async with WsDiscoveryResponder(device.xaddr, name="cam1", model="TestPTZ"):
        matches = await probe()

A namespace made by tests/rig/netns.py (the autouse `netns` fixture) or `unshare --net`
holds only `lo`, which has no MULTICAST flag and no route to 239.0.0.0/8: without the two
commands a sender that does not set IP_MULTICAST_IF gets ENETUNREACH. The helper, the
responder and probe() refuse to run where any interface but `lo` exists, so a test can
never put multicast on a real network or change the host's routes.

Protocol details as ONVIF devices use them: WS-Discovery 2005/04 with WS-Addressing 2004/08
in a SOAP 1.2 envelope; the ProbeMatches goes unicast to the Probe's source address with
RelatesTo = the Probe's MessageID. A Probe whose Types or Scopes (RFC 3986 prefix match, or
MatchBy strcmp0) do not all match gets no answer, as the spec requires.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess
import threading
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any

from lxml import etree

GROUP, PORT = "239.255.255.250", 3702
NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "d": "http://schemas.xmlsoap.org/ws/2005/04/discovery",
    "dn": "http://www.onvif.org/ver10/network/wsdl",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
}
ACTION = NS["d"] + "/"
ANONYMOUS = NS["a"] + "/role/anonymous"
DISCOVERY_TO = "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
TYPES = ((NS["dn"], "NetworkVideoTransmitter"), (NS["tds"], "Device"))
STRCMP0 = NS["d"] + "/strcmp0"
# Variants seen in the field: WS-Discovery 1.1 (OASIS) with WS-Addressing 1.0.
WSD_2009 = "http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01"
WSA_2005 = "http://www.w3.org/2005/08/addressing"


class HostNamespaceError(RuntimeError):
    """Refused: this thread's network namespace has interfaces other than `lo`."""


def interfaces() -> list[str]:
    """Interfaces of the calling thread's network namespace (setns is per thread)."""
    with open(f"/proc/self/task/{threading.get_native_id()}/net/dev") as dev:
        return [line.split(":")[0].strip() for line in dev.readlines()[2:]]


def require_private_netns() -> None:
    """Raise HostNamespaceError unless `lo` is the only interface here (a test namespace)."""
    others = [name for name in interfaces() if name != "lo"]
    if others:
        raise HostNamespaceError(
            f"WS-Discovery multicast only runs in a namespace holding just lo, not {others}"
        )


def enable_loopback_multicast() -> None:
    """Let multicast to 239.0.0.0/8 flow over `lo` in this (test) namespace."""
    require_private_netns()
    subprocess.run(["ip", "link", "set", "lo", "multicast", "on"], check=True)
    subprocess.run(["ip", "route", "replace", "239.0.0.0/8", "dev", "lo"], check=True)


def _el(qname: str, *children: Any, **attrs: str) -> etree._Element:
    prefix, local = qname.split(":")
    node = etree.Element(f"{{{NS[prefix]}}}{local}", attrs)
    for child in children:
        if isinstance(child, etree._Element):
            node.append(child)
        else:
            node.text = str(child)
    return node


def _envelope(header: list[etree._Element], body: etree._Element) -> bytes:
    envelope = etree.Element(f"{{{NS['s']}}}Envelope", nsmap=NS)  # type: ignore[arg-type]
    etree.SubElement(envelope, f"{{{NS['s']}}}Header").extend(header)
    etree.SubElement(envelope, f"{{{NS['s']}}}Body").append(body)
    # dn: and tds: appear only inside text (d:Types QNames): keep their declarations
    etree.cleanup_namespaces(envelope, top_nsmap=NS, keep_ns_prefixes=["dn", "tds"])  # type: ignore[arg-type]
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def _qnames(node: etree._Element | None) -> set[tuple[str | None, str]]:
    """The QNames listed in a d:Types element, resolved with its in-scope prefixes."""
    found: set[tuple[str | None, str]] = set()
    for item in (node.text or "").split() if node is not None else ():
        prefix, _, local = item.rpartition(":")
        found.add((node.nsmap.get(prefix or None), local))  # type: ignore[union-attr]
    return found


def _scope_matches(wanted: str, offered: str, rule: str) -> bool:
    if rule == STRCMP0:
        return wanted == offered
    w, o = urllib.parse.urlsplit(wanted), urllib.parse.urlsplit(offered)
    if (w.scheme.lower(), w.netloc.lower()) != (o.scheme.lower(), o.netloc.lower()):
        return False
    w_parts, o_parts = w.path.strip("/").split("/"), o.path.strip("/").split("/")
    return w_parts == [""] or o_parts[: len(w_parts)] == w_parts


def probe_message(
    types: str = "dn:NetworkVideoTransmitter", scopes: str | None = None
) -> tuple[str, bytes]:
    """(MessageID, datagram) of a Probe such as ONVIF clients send."""
    message_id = f"uuid:{uuid.uuid4()}"
    body = _el("d:Probe", _el("d:Types", types))
    if scopes is not None:
        body.append(_el("d:Scopes", scopes))
    header = [
        _el("a:MessageID", message_id),
        _el("a:To", DISCOVERY_TO),
        _el("a:Action", ACTION + "Probe"),
    ]
    return message_id, _envelope(header, body)


@dataclass(frozen=True)
class ProbeMatch:
    address: str  # endpoint reference, urn:uuid:...
    types: tuple[str, ...]
    scopes: tuple[str, ...]
    xaddrs: tuple[str, ...]


def parse_probe_matches(data: bytes, relates_to: str) -> list[ProbeMatch]:
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    if root.findtext("s:Header/a:RelatesTo", namespaces=NS) != relates_to:
        return []
    return [
        ProbeMatch(
            address=match.findtext("a:EndpointReference/a:Address", namespaces=NS) or "",
            types=tuple((match.findtext("d:Types", namespaces=NS) or "").split()),
            scopes=tuple((match.findtext("d:Scopes", namespaces=NS) or "").split()),
            xaddrs=tuple((match.findtext("d:XAddrs", namespaces=NS) or "").split()),
        )
        for match in root.iterfind("s:Body/d:ProbeMatches/d:ProbeMatch", NS)
    ]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: WsDiscoveryResponder) -> None:
        self.owner = owner
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.owner.answer(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class WsDiscoveryResponder:
    def __init__(
        self,
        xaddr: str,
        name: str = "camgate-test",
        model: str = "TestPTZ",
        *,
        ptz: bool = True,
        interface: str = "127.0.0.1",
        port: int = PORT,
        endpoint: str | None = None,
        wrapper: bool = True,
        namespaces: tuple[str, str] | None = None,
        raw_reply: bytes | None = None,
    ) -> None:
        """`wrapper=False`: the ProbeMatch straight in the Body (no ProbeMatches), as some
        cameras send it; `namespaces`: (discovery, addressing) URIs other than 2005/04 and
        2004/08; `raw_reply`: answer every matching Probe with these bytes instead."""
        self.xaddr, self.interface, self.port = xaddr, interface, port
        self.wrapper, self.namespaces, self.raw_reply = wrapper, namespaces, raw_reply
        self.endpoint = endpoint or f"urn:uuid:{uuid.uuid4()}"
        quote = urllib.parse.quote
        self.scopes = [
            "onvif://www.onvif.org/type/video_encoder",
            *(["onvif://www.onvif.org/type/ptz"] if ptz else []),
            f"onvif://www.onvif.org/name/{quote(name)}",
            f"onvif://www.onvif.org/hardware/{quote(model)}",
            "onvif://www.onvif.org/Profile/Streaming",
        ]
        self.probes: list[bytes] = []  # every datagram received
        self._message_number = 0
        self._seen: set[str] = set()
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        require_private_netns()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("", self.port))
        membership = struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton(self.interface))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> WsDiscoveryResponder:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def answer(self, data: bytes) -> bytes | None:
        """The ProbeMatches for a matching Probe datagram, else None."""
        self.probes.append(data)
        try:
            root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError:
            return None
        probe = root.find("s:Body/d:Probe", NS)
        message_id = root.findtext("s:Header/a:MessageID", namespaces=NS)
        if probe is None or not message_id or message_id in self._seen:
            return None  # SOAP-over-UDP repeats each datagram: answer it once
        self._seen.add(message_id)
        if not _qnames(probe.find("d:Types", NS)) <= set(TYPES):
            return None
        scopes = probe.find("d:Scopes", NS)
        rule = scopes.get("MatchBy", "") if scopes is not None else ""
        for wanted in (scopes.text or "").split() if scopes is not None else ():
            if not any(_scope_matches(wanted, offered, rule) for offered in self.scopes):
                return None
        self._message_number += 1
        header = [
            _el("a:MessageID", f"uuid:{uuid.uuid4()}"),
            _el("a:RelatesTo", message_id),
            _el("a:To", ANONYMOUS),
            _el("a:Action", ACTION + "ProbeMatches"),
            _el("d:AppSequence", InstanceId="1", MessageNumber=str(self._message_number)),
        ]
        match = _el(
            "d:ProbeMatch",
            _el("a:EndpointReference", _el("a:Address", self.endpoint)),
            _el("d:Types", "dn:NetworkVideoTransmitter tds:Device"),
            _el("d:Scopes", " ".join(self.scopes)),
            _el("d:XAddrs", self.xaddr),
            _el("d:MetadataVersion", "1"),
        )
        if self.raw_reply is not None:
            return self.raw_reply
        reply = _envelope(header, _el("d:ProbeMatches", match) if self.wrapper else match)
        if self.namespaces is not None:
            discovery, addressing = self.namespaces
            reply = reply.replace(NS["d"].encode(), discovery.encode())
            reply = reply.replace(NS["a"].encode(), addressing.encode())
        return reply


async def probe(
    timeout: float = 1.0,
    types: str = "dn:NetworkVideoTransmitter",
    scopes: str | None = None,
    port: int = PORT,
) -> list[ProbeMatch]:
    """Multicast one Probe (from this test namespace) and collect matches for `timeout` s."""
    require_private_netns()
    message_id, datagram = probe_message(types, scopes)
    matches: list[ProbeMatch] = []
    loop = asyncio.get_running_loop()

    class Collector(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            matches.extend(parse_probe_matches(data, message_id))

    transport, _ = await loop.create_datagram_endpoint(
        Collector, local_addr=("0.0.0.0", 0), family=socket.AF_INET
    )
    try:
        transport.sendto(datagram, (GROUP, port))
        await asyncio.sleep(timeout)
    finally:
        transport.close()
    return matches

"""WS-Discovery messages for ONVIF cameras: build a Probe, read ProbeMatches. No I/O.

ONVIF devices speak WS-Discovery 2005/04 (SOAP 1.2, WS-Addressing 2004/08), but what comes
back on the wire varies: SOAP 1.1 envelopes, WS-Addressing 2005/08, WS-Discovery 1.1
(2009/01), odd prefixes, several XAddrs (http and https, IPv4 and IPv6 link-local),
percent-encoded scope values, NUL padding, a missing RelatesTo, a ProbeMatch straight in the
Body without its ProbeMatches wrapper. So replies are read by local element names, never by
fixed prefixes, and a ProbeMatch is taken wherever it stands in the Body. A reply to our
Probe that still yields nothing raises DiscoveryParseError saying why, so that the user
hears "a camera answered but ..." rather than "nobody answered".

Replies come from anything on the LAN: input is bounded (datagram size, element count,
matches, scopes) and a DOCTYPE is refused outright, which rules out entity tricks
(billion laughs, external entities) without needing defusedxml.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
import urllib.parse
import uuid
import xml.parsers.expat
from dataclasses import dataclass, field

MULTICAST_GROUP = "239.255.255.250"
PORT = 3702
MAX_DATAGRAM = 65_507  # the largest UDP payload; bigger "replies" are not ours
MAX_ELEMENTS = 2_000
MAX_MATCHES = 16
MAX_SCOPES = 64
MAX_TEXT = 4_096  # per element; a scope list of 64 long URIs still fits
SHOWN_CHARS = 160  # of an unreadable reply, in a report
ONVIF_SCOPE = "onvif://www.onvif.org/"

_DISCOVERY_NS = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
_PROBE = f"""<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" \
xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" \
xmlns:d="{_DISCOVERY_NS}" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">
<s:Header>
<a:MessageID>{{message_id}}</a:MessageID>
<a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>
<a:Action>{_DISCOVERY_NS}/Probe</a:Action>
</s:Header>
<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body>
</s:Envelope>
"""


class DiscoveryParseError(ValueError):
    """A datagram that is not a well-formed, acceptable WS-Discovery message."""


def new_message_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def build_probe(message_id: str) -> bytes:
    """A Probe for ONVIF NetworkVideoTransmitters (what ONVIF Device Manager sends)."""
    if not re.fullmatch(r"urn:uuid:[0-9a-fA-F-]{36}", message_id):
        raise ValueError(f"not a urn:uuid MessageID: {message_id!r}")
    return _PROBE.format(message_id=message_id).encode()


@dataclass
class _Node:
    name: str  # local name, namespace dropped
    attrs: dict[str, str]
    children: list[_Node] = field(default_factory=list)
    text: str = ""

    def find(self, *path: str) -> _Node | None:
        node: _Node | None = self
        for name in path:
            node = next((c for c in node.children if c.name == name), None) if node else None
        return node

    def findall(self, name: str) -> list[_Node]:
        return [c for c in self.children if c.name == name]

    def text_of(self, *path: str) -> str:
        node = self.find(*path)
        return node.text.strip() if node else ""

    def descendants(self, name: str) -> list[_Node]:
        """Every element called `name` below this one, in document order, not looking
        inside a match (the tree is bounded by _parse_xml)."""
        found: list[_Node] = []
        for child in self.children:
            if child.name == name:
                found.append(child)
            else:
                found += child.descendants(name)
        return found


def _parse_xml(data: bytes) -> _Node:
    """A small namespace-stripped tree; DOCTYPE/ENTITY refused, size and depth bounded."""
    if len(data) > MAX_DATAGRAM:
        raise DiscoveryParseError("datagram too large")
    parser = xml.parsers.expat.ParserCreate(namespace_separator="}")
    stack: list[_Node] = []
    root: list[_Node] = []
    count = 0

    def refuse(*_args: object) -> None:
        raise DiscoveryParseError("DOCTYPE and entity declarations are not accepted")

    def refuse_external(*_args: object) -> int:
        raise DiscoveryParseError("external entities are not accepted")

    def start(qname: str, attrs: dict[str, str]) -> None:
        nonlocal count
        count += 1
        if count > MAX_ELEMENTS or len(stack) > 32:
            raise DiscoveryParseError("message too complex")
        node = _Node(qname.rpartition("}")[2], {k.rpartition("}")[2]: v for k, v in attrs.items()})
        (stack[-1].children if stack else root).append(node)
        stack.append(node)

    def end(_qname: str) -> None:
        stack.pop()

    def chars(text: str) -> None:
        if stack and len(stack[-1].text) + len(text) <= MAX_TEXT:
            stack[-1].text += text

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse_external
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        # Some cameras pad the datagram with NULs after the envelope.
        parser.Parse(data.rstrip(b"\x00 \r\n\t"), True)
    except xml.parsers.expat.ExpatError as exc:
        raise DiscoveryParseError(f"not well-formed XML: {exc}") from None
    if not root:
        raise DiscoveryParseError("empty message")
    return root[0]


@dataclass(frozen=True)
class ProbeMatch:
    """One device from a ProbeMatches reply (or a Hello)."""

    endpoint: str  # EndpointReference address, usually urn:uuid:...
    types: tuple[str, ...]
    scopes: tuple[str, ...]
    xaddrs: tuple[str, ...]


def parse_probe_matches(data: bytes, message_id: str | None = None) -> list[ProbeMatch]:
    """The ProbeMatch entries of a reply, wrapped in ProbeMatches or not; [] for other
    messages (Hello, Bye, Probe) or replies to another Probe (RelatesTo set and
    different). Raises DiscoveryParseError on unacceptable XML, and on a reply meant for
    us (a ProbeMatches action, or RelatesTo our Probe) that holds no usable ProbeMatch."""
    envelope = _parse_xml(data)
    if envelope.name != "Envelope":
        raise DiscoveryParseError(f"not a SOAP envelope: <{envelope.name}>")
    relates_to = envelope.text_of("Header", "RelatesTo")
    # Some cameras leave RelatesTo out; an answer to someone else's Probe is not ours.
    if message_id and relates_to and _bare_uuid(relates_to) != _bare_uuid(message_id):
        return []
    body = envelope.find("Body")
    found = body.descendants("ProbeMatch")[:MAX_MATCHES] if body else []
    answers_us = bool(message_id and relates_to) or envelope.text_of("Header", "Action").endswith(
        "/ProbeMatches"
    )
    if not found:
        if answers_us or (body and body.descendants("ProbeMatches")):
            raise DiscoveryParseError("a ProbeMatches reply without a ProbeMatch")
        return []
    matches = []
    for match in found:
        endpoint = match.text_of("EndpointReference", "Address")
        xaddrs = tuple(_clean_xaddrs(match.text_of("XAddrs").split()))
        if not xaddrs:
            continue  # without an address there is nothing to configure
        matches.append(
            ProbeMatch(
                endpoint=endpoint[:256],
                types=tuple(match.text_of("Types").split()[:16]),
                scopes=tuple(match.text_of("Scopes").split()[:MAX_SCOPES]),
                xaddrs=xaddrs,
            )
        )
    if not matches:
        raise DiscoveryParseError("no ProbeMatch with a usable http(s) XAddrs address")
    return matches


def show_datagram(data: bytes) -> str:
    """A reply as a line for the user: text, control characters (escapes included) and
    runs of white space made single spaces, cut to SHOWN_CHARS."""
    text = data[: SHOWN_CHARS * 4].decode("utf-8", "replace")
    text = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in text)
    text = " ".join(text.split())
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def _bare_uuid(message_id: str) -> str:
    """MessageIDs are compared without their urn:uuid:/uuid: prefix (cameras vary)."""
    return message_id.strip().lower().removeprefix("urn:").removeprefix("uuid:")


def _clean_xaddrs(candidates: list[str]) -> list[str]:
    out = []
    for xaddr in candidates[:8]:
        try:
            url = urllib.parse.urlsplit(xaddr)
            url.port  # noqa: B018 -- raises ValueError on a junk port
        except ValueError:
            continue
        if url.scheme in ("http", "https") and url.hostname and xaddr not in out:
            out.append(xaddr)
    return out


@dataclass(frozen=True)
class ScopeInfo:
    name: str | None = None
    hardware: str | None = None
    manufacturer: str | None = None
    location: str | None = None
    ptz: bool = False


def read_scopes(scopes: tuple[str, ...] | list[str]) -> ScopeInfo:
    """name/hardware/manufacturer/location from onvif://www.onvif.org/<key>/<value> scopes."""
    found: dict[str, list[str]] = {}
    ptz = False
    for scope in scopes:
        if not scope.lower().startswith(ONVIF_SCOPE):
            continue
        key, _, value = scope[len(ONVIF_SCOPE) :].partition("/")
        value = _scope_text(value)
        key = key.lower()
        if key == "type" and value.lower() == "ptz":
            ptz = True
        if value:
            found.setdefault(key, []).append(value)
    # location is hierarchical (location/country/sweden, location/city/lund): keep the values
    location = ", ".join(v.rpartition("/")[2] for v in found.get("location", [])[:4]) or None
    return ScopeInfo(
        name=_first(found, "name"),
        hardware=_first(found, "hardware"),
        manufacturer=_first(found, "manufacturer") or _first(found, "mfr"),
        location=location,
        ptz=ptz,
    )


def _first(found: dict[str, list[str]], key: str) -> str | None:
    return found[key][0] if found.get(key) else None


def _scope_text(value: str) -> str:
    """A scope value as text: percent-decoded, control characters dropped, bounded."""
    text = urllib.parse.unquote(value.strip("/"), errors="replace")
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    return text.strip()[:128]


def pick_xaddr(xaddrs: tuple[str, ...] | list[str], source_ip: str | None = None) -> str:
    """The XAddr to configure: the reply's own source address first, then IPv4 http, then
    any (a link-local IPv6 XAddr is useless without its zone, so it comes last)."""

    def rank(xaddr: str) -> tuple[int, int, int]:
        host = urllib.parse.urlsplit(xaddr).hostname or ""
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        return (
            0 if source_ip and host == source_ip else 1,
            0 if ip is None or ip.version == 4 else (2 if ip.is_link_local else 1),
            0 if xaddr.startswith("http:") else 1,
        )

    return min(xaddrs, key=rank)


def host_port(xaddr: str) -> tuple[str, int]:
    url = urllib.parse.urlsplit(xaddr)
    return url.hostname or "", url.port or (443 if url.scheme == "https" else 80)


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def slugify(text: str, fallback: str = "camera") -> str:
    """A valid camgate camera name (letters, digits, '-', '_', max 64) from free text."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:64].strip("-")
    return slug or fallback

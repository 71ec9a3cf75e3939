"""What discovery reports per device: one JSON-able record and a ready-to-paste config snippet."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

from gateway.discovery.wsdiscovery import (
    ProbeMatch,
    format_address,
    host_port,
    pick_xaddr,
    read_scopes,
    slugify,
)

_PLAIN_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")


@dataclass(frozen=True)
class DiscoveredDevice:
    address: str  # host:port of the ONVIF device service ([v6]:port for IPv6)
    host: str
    port: int
    xaddr: str  # the device service URL chosen from xaddrs
    xaddrs: tuple[str, ...]
    endpoint: str  # WS-Discovery endpoint reference (stable across IP changes)
    name: str | None
    hardware: str | None
    manufacturer: str | None
    location: str | None
    ptz: bool  # advertises onvif://www.onvif.org/type/ptz (many PTZ cameras do not)
    slug: str  # suggested camera name
    snippet: str  # YAML for the `cameras:` list

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["xaddrs"] = list(self.xaddrs)
        return data


def config_snippet(slug: str, host: str, port: int) -> str:
    """`- name: …\\n  onvif: {…}` as it goes under `cameras:` in camgate.yaml."""
    yaml_host = host if _PLAIN_HOST.match(host) else json.dumps(host)
    return (
        f"- name: {slug}\n"
        f"  onvif: {{host: {yaml_host}, port: {port}, username: admin, password: CHANGE-ME}}\n"
    )


def build_devices(replies: Iterable[tuple[ProbeMatch, str]]) -> list[DiscoveredDevice]:
    """One record per device from (match, reply source IP) pairs, deduplicated by endpoint
    (else by address), in a stable order, with unique suggested names."""
    devices: dict[str, DiscoveredDevice] = {}
    for match, source_ip in replies:
        xaddr = pick_xaddr(match.xaddrs, source_ip)
        host, port = host_port(xaddr)
        address = format_address(host, port)
        key = match.endpoint or address
        if key in devices:
            continue
        info = read_scopes(match.scopes)
        devices[key] = DiscoveredDevice(
            address=address,
            host=host,
            port=port,
            xaddr=xaddr,
            xaddrs=match.xaddrs,
            endpoint=match.endpoint,
            name=info.name,
            hardware=info.hardware,
            manufacturer=info.manufacturer,
            location=info.location,
            ptz=info.ptz,
            slug="",
            snippet="",
        )
    ordered = sorted(devices.values(), key=lambda d: (d.name or "", d.address))
    taken: set[str] = set()
    out = []
    for device in ordered:
        base = slugify(device.name or device.hardware or f"camera-{device.host}")
        slug, n = base, 2
        while slug in taken:
            suffix = f"-{n}"
            slug, n = base[: 64 - len(suffix)] + suffix, n + 1
        taken.add(slug)
        out.append(
            replace(device, slug=slug, snippet=config_snippet(slug, device.host, device.port))
        )
    return out

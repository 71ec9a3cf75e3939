"""Restrict the addresses camgate offers as ICE host candidates.

aioice offers every interface address except loopback. On a Pi with docker0, a VPN or
several LANs that leaks useless (or private) addresses and slows connection set-up, and
on a loopback-only test host it offers nothing usable. camgate chooses the addresses
itself: by interface name, by explicit address (loopback allowed when named), IPv6 on/off.
"""

from __future__ import annotations

import ipaddress
import logging

import ifaddr

from gateway.compat import globals as library_globals
from gateway.config import CandidateFilter

log = logging.getLogger("camgate.webrtc")


def _interface_addresses() -> list[tuple[str, str]]:
    """(interface name, address) for every configured address, IPv6 link-local excluded."""
    found: list[tuple[str, str]] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                found.append((adapter.nice_name, ip.ip))
            elif ip.ip[2] == 0:  # scope id 0: not link-local
                found.append((adapter.nice_name, ip.ip[0]))
    return found


def select_addresses(
    rules: CandidateFilter, available: list[tuple[str, str]], use_ipv4: bool, use_ipv6: bool
) -> list[str]:
    """The host candidate addresses the rules allow, in interface order."""
    wanted_interfaces = set(rules.interfaces)
    wanted_addresses = {str(ipaddress.ip_address(a)) for a in rules.addresses}
    chosen: list[str] = []
    for name, address in available:
        ip = ipaddress.ip_address(address)
        if ip.version == 6 and not (use_ipv6 and rules.ipv6):
            continue
        if ip.version == 4 and not use_ipv4:
            continue
        if wanted_interfaces or wanted_addresses:
            if name not in wanted_interfaces and str(ip) not in wanted_addresses:
                continue
        elif ip.is_loopback:
            continue  # as aioice: loopback only when asked for by name or address
        if str(ip) not in chosen:
            chosen.append(str(ip))
    # An explicitly named address that no interface reports (e.g. 127.0.0.2 on lo's /8)
    # is still usable on Linux: offer it as given.
    for address in rules.addresses:
        ip = ipaddress.ip_address(address)
        usable = (ip.version == 4 and use_ipv4) or (ip.version == 6 and use_ipv6 and rules.ipv6)
        if usable and str(ip) not in chosen and ip.is_loopback:
            chosen.append(str(ip))
    return chosen


def install_candidate_filter(rules: CandidateFilter) -> None:
    """Route aioice's host-address discovery through `rules` (process-wide)."""
    if not rules.restricted:
        library_globals.replace_host_addresses(None)
        return
    if not library_globals.can_filter_host_addresses():
        log.error(
            "webrtc.candidates cannot be applied: this aioice has no"
            " get_host_addresses(use_ipv4, use_ipv6); every address is offered"
        )
        return

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        chosen = select_addresses(rules, _interface_addresses(), use_ipv4, use_ipv6)
        if not chosen:
            log.warning("webrtc.candidates matches no local address: viewers cannot connect")
        return chosen

    library_globals.replace_host_addresses(get_host_addresses)

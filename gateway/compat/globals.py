"""Module-level names of aiortc and aioice that camgate replaces, process-wide.

Not underscored, yet not documented API either, so they live here with the other
internals and are looked for at start-up (`missing()`):
- aioice's host address discovery, which the ICE candidate filter replaces
  (gateway/webrtc/ice_filter.py);
- aiortc's range of dynamic payload types, which camgate widens to Chromium's, and its
  codec table, to which it adds the H.264 profiles beyond Baseline
  (gateway/webrtc/codecs.py).
Without one of them the feature that needs it is off, with a warning; nothing else is.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import aioice.ice
from aiortc import codecs as aiortc_codecs
from aiortc import rtp

HostAddresses = Callable[[bool, bool], list[str]]

# aioice's own discovery, to restore when no filter is configured.
_original_host_addresses: HostAddresses | None = getattr(aioice.ice, "get_host_addresses", None)


def missing() -> list[str]:
    """Every module-level name this module needs and does not find, qualified."""
    gone: list[str] = []
    host = _original_host_addresses
    if host is None or list(inspect.signature(host).parameters) != ["use_ipv4", "use_ipv6"]:
        gone.append("aioice: ice.get_host_addresses(use_ipv4, use_ipv6)")
    if not isinstance(getattr(rtp, "DYNAMIC_PAYLOAD_TYPES", None), (set, frozenset, range)):
        gone.append("aiortc: rtp.DYNAMIC_PAYLOAD_TYPES")
    table = getattr(aiortc_codecs, "CODECS", None)
    if not isinstance(table, dict) or not isinstance(table.get("video"), list):
        gone.append("aiortc: codecs.CODECS['video']")
    return gone


def can_filter_host_addresses() -> bool:
    return not any("get_host_addresses" in name for name in missing())


def replace_host_addresses(provider: HostAddresses | None) -> None:
    """aioice gathers host candidates from `provider` (None: its own discovery)."""
    aioice.ice.get_host_addresses = provider or _original_host_addresses  # type: ignore[assignment]


def widen_dynamic_payload_types(values: Iterable[int]) -> None:
    rtp.DYNAMIC_PAYLOAD_TYPES = frozenset(values)  # type: ignore[assignment]


def codec_table(kind: str) -> list[Any] | None:
    """aiortc's list of the codecs it negotiates for `kind` (appendable), or None."""
    table = getattr(aiortc_codecs, "CODECS", None)
    codecs = table.get(kind) if isinstance(table, dict) else None
    return codecs if isinstance(codecs, list) else None

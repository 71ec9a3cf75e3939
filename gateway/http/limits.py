"""Caps on HTTP connections (enforced by gateway/http/connections.py). Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_CONNECTIONS = 256
DEFAULT_MAX_PER_ADDRESS = 64
# Header-read and keep-alive idle timeout (nginx uses 60-75 s, Apache 5 s).
DEFAULT_IDLE_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_per_address: int = DEFAULT_MAX_PER_ADDRESS
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S

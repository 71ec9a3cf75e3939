"""How much one client, and everyone, may make camgate hold: the numbers and their
defaults, declared once. Enforced by gateway/http/connections.py (HTTP connections) and
gateway/webrtc/limits.py (WHEP sessions); set in the config's `limits:` (SECURITY.md).
Pure: no I/O, and below every package that uses it."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_CONNECTIONS = 256
DEFAULT_MAX_PER_ADDRESS = 64
# Header-read and keep-alive idle timeout (nginx uses 60-75 s, Apache 5 s).
DEFAULT_IDLE_TIMEOUT_S = 15.0

# Connecting takes a second or two; a page with several cameras opens a few at once.
DEFAULT_PENDING_PER_CLIENT = 16
DEFAULT_PENDING_TOTAL = 48
# Live and connecting together. A household shares one viewer account: the
# per-credential limit must be generous.
DEFAULT_SESSIONS_PER_CLIENT = 48
DEFAULT_SESSIONS_TOTAL = 96


@dataclass(frozen=True)
class ConnectionLimits:
    """HTTP connections: in total, per remote address, and how long one may idle."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_per_address: int = DEFAULT_MAX_PER_ADDRESS
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S


@dataclass(frozen=True)
class SessionQuota:
    """WHEP sessions: connecting (pending) and all, per client and in total."""

    pending_per_client: int = DEFAULT_PENDING_PER_CLIENT
    pending_total: int = DEFAULT_PENDING_TOTAL
    sessions_per_client: int = DEFAULT_SESSIONS_PER_CLIENT
    sessions_total: int = DEFAULT_SESSIONS_TOTAL

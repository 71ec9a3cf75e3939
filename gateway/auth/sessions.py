"""Browser sessions (in memory: a restart signs everyone out) and login rate limits."""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import time
from collections import deque
from collections.abc import Callable

from gateway.auth.roles import Identity, Role

SESSION_TOKEN_BYTES = 32
MAX_SESSIONS = 1000  # the oldest are dropped beyond this: bounded memory
MAX_TRACKED_CLIENTS = 4096  # sign-in clients remembered by the limiter


class SessionStore:
    def __init__(self, lifetime_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.lifetime_s = lifetime_s
        self._clock = clock
        # sha256(token) -> (identity, expiry): a memory dump holds no usable cookie
        self._sessions: dict[bytes, tuple[Identity, float]] = {}

    def create(self, name: str, role: Role, credential: str = "") -> str:
        """A new session for `name`, signed in with `credential` (see Identity)."""
        token = secrets.token_urlsafe(SESSION_TOKEN_BYTES)
        if len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
        key = _digest(token)
        identity = Identity(name, role, True, credential, holder=f"session:{key[:8].hex()}")
        self._sessions[key] = (identity, self._clock() + self.lifetime_s)
        return token

    def lookup(self, token: str) -> Identity | None:
        key = _digest(token)
        entry = self._sessions.get(key)
        if entry is None:
            return None
        identity, expiry = entry
        if self._clock() >= expiry:
            del self._sessions[key]
            return None
        return identity

    def revoke(self, token: str) -> None:
        self._sessions.pop(_digest(token), None)

    def revoke_user(self, name: str) -> None:
        """Sign `name` out everywhere (its password changed)."""
        self.revoke_where(lambda identity: identity.name == name)

    def revoke_where(self, revoked: Callable[[Identity], bool]) -> int:
        """End every session whose identity is `revoked`; returns how many ended."""
        keys = [k for k, (identity, _) in self._sessions.items() if revoked(identity)]
        for key in keys:
            del self._sessions[key]
        return len(keys)

    def __len__(self) -> int:
        return len(self._sessions)


class LoginLimiter:
    """Sign-in attempts, counted before the (slow, on purpose) password hash runs.

    - Per client (an IPv4 address, or an IPv6 /64: one host holds a whole /64): at most
      `per_client` attempts that did not succeed within `window_s`. `admit` takes the slot
      before the hash runs, so concurrent tries can't slip past the count; a success gives
      the client's slots back.
    - Overall: at most `overall` failures within `window_s` from clients that have failed
      themselves. A client with no failures in the window, or one that signed in before
      (remembered for `trusted_s`), is never held back by other clients' failures: an
      attacker can't lock the owner out.
    """

    def __init__(
        self,
        per_client: int = 5,
        overall: int = 50,
        window_s: float = 300.0,
        trusted_s: float = 30 * 86400.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_client, self.overall, self.window_s = per_client, overall, window_s
        self.trusted_s = trusted_s
        self._clock = clock
        self._attempts: dict[str, deque[float]] = {}  # client -> unsucceeded attempts
        self._failures: deque[float] = deque()  # every failure, for the overall limit
        self._trusted: dict[str, float] = {}  # client -> until when

    def admit(self, client: str) -> float:
        """Take an attempt slot for `client`: 0 if taken (the caller then reports
        `failed` or `succeeded`), else the seconds to wait."""
        now = self._clock()
        self._expire(now)
        mine = self._attempts.get(client)
        if mine is not None and len(mine) >= self.per_client:
            return mine[0] + self.window_s - now
        held_back = mine is not None and self._trusted.get(client, 0.0) <= now
        if held_back and len(self._failures) >= self.overall:
            return self._failures[0] + self.window_s - now
        if mine is None:
            if len(self._attempts) >= MAX_TRACKED_CLIENTS:  # bounded memory
                self._attempts.pop(next(iter(self._attempts)))
            mine = self._attempts[client] = deque()
        mine.append(now)
        return 0.0

    def failed(self, client: str) -> None:
        """The admitted attempt failed: its slot stays taken until it ages out."""
        self._failures.append(self._clock())

    def succeeded(self, client: str) -> None:
        now = self._clock()
        self._attempts.pop(client, None)
        self._trusted.pop(client, None)
        if len(self._trusted) >= MAX_TRACKED_CLIENTS:
            self._trusted.pop(next(iter(self._trusted)))
        self._trusted[client] = now + self.trusted_s

    def _expire(self, now: float) -> None:
        horizon = now - self.window_s
        while self._failures and self._failures[0] <= horizon:
            self._failures.popleft()
        for client in list(self._attempts):
            times = self._attempts[client]
            while times and times[0] <= horizon:
                times.popleft()
            if not times:
                del self._attempts[client]


def client_key(remote: str | None) -> str:
    """Whom a sign-in attempt counts against: the IPv4 address, or the IPv6 /64."""
    try:
        address = ipaddress.ip_address((remote or "").split("%")[0])
    except ValueError:
        return remote or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()

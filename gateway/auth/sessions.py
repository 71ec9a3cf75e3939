"""Browser sessions (in memory: a restart signs everyone out) and login rate limits."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import deque
from collections.abc import Callable

from gateway.auth.roles import Identity, Role

SESSION_TOKEN_BYTES = 32
MAX_SESSIONS = 1000  # the oldest are dropped beyond this: bounded memory


class SessionStore:
    def __init__(self, lifetime_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.lifetime_s = lifetime_s
        self._clock = clock
        # sha256(token) -> (identity, expiry): a memory dump holds no usable cookie
        self._sessions: dict[bytes, tuple[Identity, float]] = {}

    def create(self, name: str, role: Role) -> str:
        token = secrets.token_urlsafe(SESSION_TOKEN_BYTES)
        if len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
        identity = Identity(name, role, via_cookie=True)
        self._sessions[_digest(token)] = (identity, self._clock() + self.lifetime_s)
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
        for key in [k for k, (ident, _) in self._sessions.items() if ident.name == name]:
            del self._sessions[key]

    def __len__(self) -> int:
        return len(self._sessions)


class LoginLimiter:
    """At most `per_client` failed logins per client address and `overall` in total within
    `window_s`; beyond that, logins are refused until the oldest failure ages out."""

    def __init__(
        self,
        per_client: int = 5,
        overall: int = 50,
        window_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_client, self.overall, self.window_s = per_client, overall, window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()

    def retry_after(self, client: str) -> float:
        """Seconds until `client` may try again; 0 if it may now."""
        now = self._clock()
        self._expire(now)
        waits = [0.0]
        mine = self._failures.get(client)
        if mine is not None and len(mine) >= self.per_client:
            waits.append(mine[0] + self.window_s - now)
        if len(self._all) >= self.overall:
            waits.append(self._all[0] + self.window_s - now)
        return max(waits)

    def failed(self, client: str) -> None:
        now = self._clock()
        self._failures.setdefault(client, deque()).append(now)
        self._all.append(now)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def _expire(self, now: float) -> None:
        horizon = now - self.window_s
        while self._all and self._all[0] <= horizon:
            self._all.popleft()
        for client in list(self._failures):
            times = self._failures[client]
            while times and times[0] <= horizon:
                times.popleft()
            if not times:
                del self._failures[client]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()

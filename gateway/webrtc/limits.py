"""How many WHEP sessions a client, and the gateway, may hold. Pure bookkeeping: no I/O.

Every session costs UDP sockets, a DTLS context and a camera subscription, and a pending
one (answered, not yet connected) may never connect. So sessions are counted per
credential (the account or token that opened them), per remote address and in total,
pending and live apart; a new offer past a limit is refused before its body is read
(429 for one client's limit, 503 for the gateway's). Pending sessions end at the
connect deadline (gateway/webrtc/session.py), which gives their slots back.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import Enum

from gateway.quotas import SessionQuota

# Retry-After for refusals of pending slots: about when some will have connected or expired.
RETRY_AFTER_S = 5


class Phase(Enum):
    PENDING = "pending"
    LIVE = "live"


class SessionLimitExceeded(Exception):
    """A new session would pass a limit; `status` is 429 (this client) or 503 (all)."""

    def __init__(self, status: int, message: str, retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Client:
    """Who asks: `credential` is None when auth is off (everyone is the same caller then,
    so only the address tells clients apart)."""

    credential: str | None
    address: str

    def counted_as(self) -> tuple[str, ...]:
        keys = (f"address:{self.address}",)
        return keys if self.credential is None else (*keys, f"credential:{self.credential}")


class SessionSlot:
    """One admitted session's place in the counts, from admission to its end."""

    def __init__(self, limiter: SessionLimiter, client: Client) -> None:
        self._limiter = limiter
        self.client = client
        self.phase: Phase | None = Phase.PENDING

    def connected(self) -> None:
        """The peer connection is up: the slot moves from pending to live."""
        if self.phase is Phase.PENDING:
            self._limiter._move(self, Phase.PENDING, Phase.LIVE)
            self.phase = Phase.LIVE

    def release(self) -> None:
        """The session ended (or never started): idempotent."""
        if self.phase is not None:
            self._limiter._move(self, self.phase, None)
            self.phase = None


class SessionLimiter:
    def __init__(self, quota: SessionQuota | None = None) -> None:
        self.quota = quota or SessionQuota()
        self._per_client: dict[Phase, Counter[str]] = {p: Counter() for p in Phase}
        self._total: Counter[Phase] = Counter()
        self.refused = 0  # offers refused so far (for /metrics and tests)

    def count(self, phase: Phase, key: str | None = None) -> int:
        return self._total[phase] if key is None else self._per_client[phase][key]

    def admit(self, client: Client) -> SessionSlot:
        """A pending slot for a new session, or SessionLimitExceeded."""
        try:
            self._check(client)
        except SessionLimitExceeded:
            self.refused += 1
            raise
        slot = SessionSlot(self, client)
        self._move(slot, None, Phase.PENDING)
        return slot

    def _check(self, client: Client) -> None:
        q = self.quota
        live_total = self._total[Phase.LIVE]
        pending_total = self._total[Phase.PENDING]
        for key in client.counted_as():
            what = key.partition(":")[0]
            if self._per_client[Phase.LIVE][key] + self._per_client[Phase.PENDING][key] >= (
                q.sessions_per_client
            ):
                limit = q.sessions_per_client
                raise SessionLimitExceeded(
                    429, f"too many viewer sessions for this {what} (at most {limit})"
                )
            if self._per_client[Phase.PENDING][key] >= q.pending_per_client:
                raise SessionLimitExceeded(
                    429,
                    f"too many connecting viewer sessions for this {what} "
                    f"(at most {q.pending_per_client}): wait for them to connect",
                )
        if live_total + pending_total >= q.sessions_total:
            limit = q.sessions_total
            raise SessionLimitExceeded(503, f"the gateway has its maximum of {limit} viewers")
        if pending_total >= q.pending_total:
            raise SessionLimitExceeded(503, "too many viewer sessions are connecting: retry soon")

    def _move(self, slot: SessionSlot, old: Phase | None, new: Phase | None) -> None:
        for key in slot.client.counted_as():
            if old is not None:
                self._per_client[old][key] -= 1
                if self._per_client[old][key] <= 0:
                    del self._per_client[old][key]
            if new is not None:
                self._per_client[new][key] += 1
        if old is not None:
            self._total[old] -= 1
        if new is not None:
            self._total[new] += 1

"""Session limits, HTTP connection caps and the log's repeat filter, without a network."""

from __future__ import annotations

import asyncio
import errno
import logging

import pytest

from gateway.config import ConfigError, parse_config
from gateway.http.connections import ConnectionGuard, ConnectionLimits
from gateway.logrepeat import RepeatFilter, quiet_resource_errors
from gateway.webrtc.limits import Client, Phase, SessionLimiter, SessionLimitExceeded, SessionQuota

QUOTA = SessionQuota(pending_per_client=2, pending_total=3, sessions_per_client=3, sessions_total=4)


def test_pending_sessions_per_client_then_429_then_room_again() -> None:
    limiter = SessionLimiter(QUOTA)
    viewer = Client("viewer", "10.0.0.1")
    first, _second = limiter.admit(viewer), limiter.admit(viewer)
    with pytest.raises(SessionLimitExceeded) as refused:
        limiter.admit(viewer)
    assert refused.value.status == 429 and "connecting" in str(refused.value)
    first.connected()  # pending -> live frees a pending slot
    limiter.admit(viewer)
    assert limiter.count(Phase.LIVE) == 1 and limiter.count(Phase.PENDING) == 2
    with pytest.raises(SessionLimitExceeded):  # 3 sessions: the per-client maximum
        limiter.admit(Client("viewer", "10.0.0.9"))
    assert limiter.refused == 2


def test_one_credential_from_many_addresses_and_one_address_with_many_credentials() -> None:
    limiter = SessionLimiter(QUOTA)
    limiter.admit(Client("viewer", "10.0.0.1"))
    limiter.admit(Client("viewer", "10.0.0.2"))
    with pytest.raises(SessionLimitExceeded):
        limiter.admit(Client("viewer", "10.0.0.3"))  # the credential's pending limit
    limiter.admit(Client("token:x", "10.0.0.3"))
    with pytest.raises(SessionLimitExceeded) as refused:
        limiter.admit(Client("admin", "10.0.0.4"))  # 3 pending in total
    assert refused.value.status == 503


def test_released_slots_are_given_back_once() -> None:
    limiter = SessionLimiter(QUOTA)
    slot = limiter.admit(Client(None, "10.0.0.1"))
    slot.connected()
    slot.release()
    slot.release()
    slot.connected()
    assert limiter.count(Phase.LIVE) == 0 and limiter.count(Phase.PENDING) == 0
    for _ in range(2):
        limiter.admit(Client(None, "10.0.0.1"))


class FakeConnection:
    """Stands in for aiohttp's RequestHandler: the guard only calls force_close()."""

    def __init__(self) -> None:
        self.closed = False

    def force_close(self) -> None:
        self.closed = True


def test_a_new_connection_replaces_the_oldest_idle_one_of_its_address() -> None:
    guard = ConnectionGuard(ConnectionLimits(max_connections=10, max_per_address=3), lambda: False)
    busy, idle1, idle2, other = (FakeConnection() for _ in range(4))
    for conn in (busy, idle1, idle2):
        assert guard.admit(conn, "10.0.0.66")
    assert guard.admit(other, "10.0.0.1")
    guard.request_started(busy)
    newcomer = FakeConnection()
    assert guard.admit(newcomer, "10.0.0.66")
    assert idle1.closed and not busy.closed and not other.closed and len(guard) == 4


def test_when_everything_is_busy_the_new_connection_is_refused() -> None:
    now = [0.0]
    guard = ConnectionGuard(ConnectionLimits(max_connections=2), lambda: False, lambda: now[0])
    a, b = FakeConnection(), FakeConnection()
    guard.admit(a, "10.0.0.1")
    guard.admit(b, "10.0.0.2")
    guard.request_started(a)
    guard.request_started(b)
    assert not guard.admit(FakeConnection(), "10.0.0.3")
    now[0] = 3600.0  # a request stuck for an hour (a body sent a byte at a time) may go
    assert guard.admit(FakeConnection(), "10.0.0.3") and a.closed
    guard.closed(b)
    assert len(guard) == 1 and guard.refused == 1 and guard.replaced == 1


def test_short_of_descriptors_replaces_idle_connections() -> None:
    guard = ConnectionGuard(ConnectionLimits(), fds_short=lambda: True)
    idle = FakeConnection()
    assert not guard.admit(idle, "10.0.0.1")  # nothing to replace: refused
    guard_ok = ConnectionGuard(ConnectionLimits(), fds_short=lambda: False)
    guard_ok.admit(idle, "10.0.0.1")
    guard_ok._fds_short = lambda: True
    assert guard_ok.admit(FakeConnection(), "10.0.0.2") and idle.closed


def record(msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("camgate.x", level, __file__, 1, msg, args, None)


def test_repeated_errors_are_one_line_per_window_with_a_count() -> None:
    now = [0.0]
    repeat = RepeatFilter(window_s=10.0, clock=lambda: now[0])
    passed = [r for r in (record("accept failed: %s", i) for i in range(1000)) if repeat.filter(r)]
    assert [r.getMessage() for r in passed] == ["accept failed: 0"]
    assert repeat.filter(record("another error"))
    assert repeat.filter(record("info line", level=logging.INFO))
    assert repeat.filter(record("info line", level=logging.INFO))
    now[0] = 10.5
    later = record("accept failed: %s", "x")
    assert repeat.filter(later)
    assert later.getMessage() == "accept failed: x (repeated 999 times)"


def test_out_of_descriptors_on_accept_is_one_line_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.new_event_loop()
    try:
        quiet_resource_errors(loop)
        emfile = OSError(errno.EMFILE, "Too many open files")
        loop.call_exception_handler(
            {"message": "socket.accept() out of system resource", "exception": emfile}
        )
        other = ValueError("a bug")
        loop.call_exception_handler({"message": "something else", "exception": other})
    finally:
        loop.close()
    first, second = caplog.records
    assert first.getMessage() == "socket.accept() out of system resource: Too many open files"
    assert first.exc_info is None
    assert second.exc_info is not None  # anything else keeps asyncio's full report


def test_limits_from_the_config() -> None:
    cameras = "cameras: [{name: d, source: demo}]\n"
    default = parse_config(cameras).client_limits
    assert default.sessions == SessionQuota() and default.http == ConnectionLimits()
    chosen = parse_config(
        cameras
        + "client_limits: {viewers_total: 200, connecting_per_client: 4, http_idle_timeout: 2.5}"
    ).client_limits
    assert chosen.sessions.sessions_total == 200 and chosen.sessions.pending_per_client == 4
    assert chosen.http.idle_timeout_s == 2.5 and chosen.http.max_connections == 256
    for bad, message in [
        ("{viewers: 3}", "client_limits.viewers: unknown key"),
        ("{viewers_total: 0}", "client_limits.viewers_total"),
        ("{http_connections: 1.5}", "whole number"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_config(cameras + f"client_limits: {bad}")

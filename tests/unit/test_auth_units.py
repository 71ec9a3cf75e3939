"""Passwords, sessions, login limits, the auth file and access rules."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from gateway.auth.passwords import (
    PasswordError,
    check_new_password,
    hash_password,
    verify_password,
)
from gateway.auth.roles import Access, Role
from gateway.auth.sessions import LoginLimiter, SessionStore, client_key
from gateway.auth.store import AuthStore
from gateway.logs import JsonFormatter


def test_password_hashes_verify_and_differ() -> None:
    first, second = hash_password("hunter2hunter2"), hash_password("hunter2hunter2")
    assert first != second and first.startswith("scrypt$32768$8$1$")
    assert verify_password("hunter2hunter2", first)
    assert not verify_password("hunter2hunter3", first)
    for junk in ("", "scrypt$", "scrypt$1$2$3$!!$!!", "md5$x", first + "x"):
        assert not verify_password("hunter2hunter2", junk)


@pytest.mark.parametrize("bad", ["short", 12345678, "x" * 2000, None])
def test_new_passwords_are_checked(bad: object) -> None:
    with pytest.raises(PasswordError):
        check_new_password(bad)


def test_sessions_expire_and_revoke() -> None:
    now = [0.0]
    store = SessionStore(lifetime_s=10, clock=lambda: now[0])
    token = store.create("admin", Role.ADMIN)
    identity = store.lookup(token)
    assert identity is not None and identity.role is Role.ADMIN and identity.via_cookie
    assert store.lookup(token + "x") is None
    other = store.create("viewer", Role.VIEWER)
    store.revoke_user("viewer")
    assert store.lookup(other) is None
    now[0] = 10
    assert store.lookup(token) is None and len(store) == 0


def test_login_limiter_counts_an_attempt_before_it_runs() -> None:
    now = [0.0]
    limiter = LoginLimiter(per_client=2, overall=100, window_s=60, clock=lambda: now[0])
    # Two admitted and still running: a third concurrent try is refused already.
    assert limiter.admit("a") == 0 and limiter.admit("a") == 0
    assert limiter.admit("a") == 60
    limiter.failed("a")
    limiter.succeeded("a")  # the other one was right: the client's slots come back
    assert limiter.admit("a") == 0
    now[0] = 30
    assert limiter.admit("b") == 0 and limiter.admit("b") == 0 and limiter.admit("b") == 60


def test_login_limiter_overall_limit_spares_clients_without_failures() -> None:
    now = [0.0]
    limiter = LoginLimiter(per_client=2, overall=3, window_s=60, clock=lambda: now[0])
    assert limiter.admit("owner") == 0
    limiter.succeeded("owner")  # signed in before: trusted
    for client in ("a", "a", "b"):
        assert limiter.admit(client) == 0
        limiter.failed(client)
    # Three failures overall: clients that failed wait; a fresh one and the owner don't.
    assert limiter.admit("b") == 60
    assert limiter.admit("fresh") == 0
    limiter.failed("fresh")
    assert limiter.admit("fresh") == 60  # it has failed now: the overall limit holds it
    assert limiter.admit("owner") == 0
    limiter.failed("owner")
    assert limiter.admit("owner") == 0  # a typo doesn't lock a known client out
    now[0] = 61
    assert limiter.admit("a") == 0 and limiter.admit("fresh") == 0


def test_login_clients_are_addresses_and_ipv6_prefixes() -> None:
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key(None) == "unknown"


def test_auth_file_tokens_and_passwords(tmp_path: Path) -> None:
    store = AuthStore(tmp_path / "state")
    assert store.password_hash("admin") is None
    token = store.create_token("ha", Role.VIEWER)
    with pytest.raises(ValueError, match="exists"):
        store.create_token("ha", Role.ADMIN)
    identity = store.identify_token(token)
    assert identity is not None and identity.name == "token:ha" and identity.role is Role.VIEWER
    assert not identity.via_cookie
    text = (tmp_path / "state" / "auth.json").read_text()
    assert token not in text  # only the hash is kept
    # Another process (the CLI) edits the file: a running gateway sees it.
    other = AuthStore(tmp_path / "state")
    assert other.revoke_token("ha") and not other.revoke_token("ha")
    assert store.identify_token(token) is None
    store.set_password_hash("admin", hash_password("a long password"))
    assert verify_password("a long password", other.password_hash("admin") or "")


def test_corrupt_auth_file_is_a_clear_error(tmp_path: Path) -> None:
    from gateway.auth.store import AuthFileError

    (tmp_path / "auth.json").write_text("{not json")
    with pytest.raises(AuthFileError, match=r"auth\.json"):
        AuthStore(tmp_path)
    (tmp_path / "auth.json").write_text(json.dumps({"users": [], "tokens": [{"x": 1}]}))
    assert AuthStore(tmp_path).tokens() == []


def test_access_levels() -> None:
    assert Access.PUBLIC.allows(None)
    assert not Access.VIEWER.allows(None)
    assert Access.VIEWER.allows(Role.VIEWER) and Access.VIEWER.allows(Role.ADMIN)
    assert not Access.ADMIN.allows(Role.VIEWER) and Access.ADMIN.allows(Role.ADMIN)


def test_json_logs_are_one_object_per_line_without_credentials() -> None:
    record = logging.LogRecord(
        "camgate.hub", logging.WARNING, __file__, 1, "cannot open %s", ("rtsp://u:p@h/",), None
    )
    from gateway.logs import RedactingFilter

    RedactingFilter().filter(record)
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["level"] == "warning" and entry["logger"] == "camgate.hub"
    assert entry["message"] == "cannot open rtsp://***@h/" and "\n" not in line


def test_host_policy_answers_to_own_names_only() -> None:
    from gateway.auth.hosts import HostPolicy

    policy = HostPolicy(["Cams.Example.org"], hostname=lambda: "camgate")
    own = [
        None,
        "192.168.1.20",
        "192.168.1.20:8080",
        "[fe80::1]:8080",
        "[::1]",
        "localhost:8080",
        "app.localhost",
        "camgate",
        "CAMGATE.local.:8080",
        "cams.example.org",
    ]
    for host in own:
        assert policy.allows(host), host
    for host in (
        "rebind.evil.example",
        "camgate.evil.example",
        "evil.local",
        "[::1]x",
        "[::1",
        "localhost:80x",
        "",
        "example.org",
    ):
        assert not policy.allows(host), host
    assert HostPolicy(["*"]).allows("anything.example")


def test_setup_code_is_kept_until_used_and_compared_loosely(tmp_path: Path) -> None:
    from gateway.auth import setup_code

    code = setup_code.ensure(tmp_path)
    assert setup_code.ensure(tmp_path) == code == setup_code.read(tmp_path)  # a restart keeps it
    assert (tmp_path / "setup-code").stat().st_mode & 0o077 == 0
    assert setup_code.matches(code, code.lower().replace("-", " "))
    assert not setup_code.matches(code, "") and not setup_code.matches(code, None)
    assert not setup_code.matches(code, code + "2")
    setup_code.remove(tmp_path)
    assert setup_code.read(tmp_path) is None
    (tmp_path / "setup-code").write_text("0000-0000\n")  # 0 is not in the alphabet
    assert setup_code.read(tmp_path) is None and setup_code.ensure(tmp_path) != "0000-0000"


def test_sessions_remember_their_credential_and_holder() -> None:
    store = SessionStore(lifetime_s=60)
    first, second = (
        store.create("viewer", Role.VIEWER, "password:a"),
        store.create("viewer", Role.VIEWER, "password:a"),
    )
    one, two = store.lookup(first), store.lookup(second)
    assert one is not None and two is not None
    assert one.credential == "password:a" and one.holder != two.holder  # two browsers
    assert store.revoke_where(lambda identity: identity.credential == "password:a") == 2
    assert store.lookup(first) is None

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
from gateway.auth.sessions import LoginLimiter, SessionStore
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


def test_login_limiter_per_client_and_overall() -> None:
    now = [0.0]
    limiter = LoginLimiter(per_client=2, overall=3, window_s=60, clock=lambda: now[0])
    limiter.failed("a")
    assert limiter.retry_after("a") == 0
    limiter.failed("a")
    assert limiter.retry_after("a") == 60 and limiter.retry_after("b") == 0
    limiter.failed("b")
    assert limiter.retry_after("c") == 60  # three failures from anywhere: everyone waits
    now[0] = 61
    assert limiter.retry_after("a") == 0 and limiter.retry_after("c") == 0


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

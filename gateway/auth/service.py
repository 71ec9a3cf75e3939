"""Authenticator: the accounts, tokens, sessions and login limits of one gateway."""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path

from gateway.auth.passwords import check_new_password, hash_password, verify_password
from gateway.auth.roles import Identity, Role
from gateway.auth.sessions import LoginLimiter, SessionStore
from gateway.auth.store import AuthStore
from gateway.config import AuthConfig

log = logging.getLogger("camgate.auth")

ADMIN, VIEWER = "admin", "viewer"
ROLES = {ADMIN: Role.ADMIN, VIEWER: Role.VIEWER}
# With auth off every caller is the admin.
NOBODY_CHECKS = Identity("anonymous", Role.ADMIN, via_cookie=False)


class LoginRefused(Exception):
    """Wrong user name or password; `retry_after` > 0: too many attempts, wait."""

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Authenticator:
    def __init__(self, config: AuthConfig, state_dir: Path) -> None:
        self.enabled = config.enabled
        self.store = AuthStore(state_dir)
        self.sessions = SessionStore(lifetime_s=config.session_days * 86400)
        self.limiter = LoginLimiter()
        # Passwords from the config file win over stored ones (hashed once, at start).
        self._configured: dict[str, str] = {}
        for user, password in ((ADMIN, config.admin_password), (VIEWER, config.viewer_password)):
            if password is not None:
                self._configured[user] = hash_password(password)

    @property
    def needs_setup(self) -> bool:
        """No admin password yet: the first visitor chooses it."""
        return self.enabled and self._hash(ADMIN) is None

    def _hash(self, user: str) -> str | None:
        return self._configured.get(user) or self.store.password_hash(user)

    def identify(self, session_cookie: str | None, bearer: str | None) -> Identity | None:
        if not self.enabled:
            return NOBODY_CHECKS
        if bearer:
            return self.store.identify_token(bearer)
        if session_cookie:
            return self.sessions.lookup(session_cookie)
        return None

    async def login(self, user: str, password: str, client: str) -> str:
        """A new session token, or LoginRefused. Failed attempts are rate limited per
        client and overall; the hash check runs in a thread (it is slow on purpose)."""
        wait = self.limiter.retry_after(client)
        if wait > 0:
            raise LoginRefused("too many failed logins: try again later", retry_after=wait)
        encoded = self._hash(user) if user in ROLES else None
        # Unknown users cost the same time as known ones: no user name probing by timing.
        checked = await asyncio.to_thread(verify_password, password, encoded or _dummy_hash())
        ok = checked and encoded is not None
        if not ok:
            self.limiter.failed(client)
            log.warning("failed login for %r from %s", user[:32], client)
            raise LoginRefused("wrong user name or password")
        self.limiter.succeeded(client)
        log.info("%s signed in from %s", user, client)
        return self.sessions.create(user, ROLES[user])

    async def set_up(self, password: str) -> str:
        """Choose the admin password on the first visit; returns a session token."""
        check_new_password(password)
        if not self.needs_setup:
            raise LoginRefused("the admin password is already set")
        encoded = await asyncio.to_thread(hash_password, password)
        if not self.needs_setup:  # another visitor was faster
            raise LoginRefused("the admin password is already set")
        self.store.set_password_hash(ADMIN, encoded)
        log.info("admin password set on first visit")
        return self.sessions.create(ADMIN, Role.ADMIN)


@functools.cache
def _dummy_hash() -> str:
    return hash_password("not a password: equalises timing for unknown users")

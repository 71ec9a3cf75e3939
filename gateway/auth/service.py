"""Authenticator: the accounts, tokens, sessions and login limits of one gateway."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from pathlib import Path

from gateway.auth import setup_code
from gateway.auth.hosts import HostPolicy
from gateway.auth.passwords import check_new_password, hash_password, verify_password
from gateway.auth.roles import Identity, Role
from gateway.auth.sessions import LoginLimiter, SessionStore, client_key
from gateway.auth.store import AuthStore
from gateway.config import AuthConfig
from gateway.logs import LogThrottle

log = logging.getLogger("camgate.auth")

ADMIN, VIEWER = "admin", "viewer"
ROLES = {ADMIN: Role.ADMIN, VIEWER: Role.VIEWER}
# With auth off every caller is the admin.
NOBODY_CHECKS = Identity("anonymous", Role.ADMIN, via_cookie=False)
# Password hashes at once, whoever asks: each takes 32 MiB and a core for a moment.
MAX_CONCURRENT_HASHES = 2


class LoginRefused(Exception):
    """Wrong user name or password; `retry_after` > 0: too many attempts, wait."""

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SetupRefused(LoginRefused):
    """First-visit setup without the right setup code."""


class Authenticator:
    def __init__(self, config: AuthConfig, state_dir: Path) -> None:
        self.enabled = config.enabled
        self.state_dir = state_dir
        self.hosts = HostPolicy(config.allowed_hosts)
        # A rebinding page retries endlessly: a few lines a minute say so, not one each.
        self.host_refusals = LogThrottle(logging.getLogger("camgate.http"), burst=5)
        self.store = AuthStore(state_dir)
        self.sessions = SessionStore(lifetime_s=config.session_days * 86400)
        self.limiter = LoginLimiter()
        self._hashing = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
        # Passwords from the config file win over stored ones (hashed once, at start).
        self._configured: dict[str, str] = {}
        for user, password in ((ADMIN, config.admin_password), (VIEWER, config.viewer_password)):
            if password is not None:
                self._configured[user] = hash_password(password)
        if not self.needs_setup and self.enabled:
            setup_code.remove(state_dir)  # e.g. set in the config since: no stale code

    @property
    def needs_setup(self) -> bool:
        """No admin password yet: the first visitor who knows the setup code chooses it."""
        return self.enabled and self._hash(ADMIN) is None

    @property
    def setup_code(self) -> str | None:
        """The one-time code first-visit setup asks for (None: no setup needed)."""
        return setup_code.ensure(self.state_dir) if self.needs_setup else None

    def _hash(self, user: str) -> str | None:
        return self._configured.get(user) or self.store.password_hash(user)

    def _password_credential(self, user: str) -> str | None:
        """A fingerprint of `user`'s current password hash: it changes with the password."""
        encoded = self._hash(user) if user in ROLES else None
        if encoded is None:
            return None
        return "password:" + hashlib.sha256(encoded.encode()).hexdigest()[:32]

    def identify(self, session_cookie: str | None, bearer: str | None) -> Identity | None:
        if not self.enabled:
            return NOBODY_CHECKS
        if bearer:
            return self.store.identify_token(bearer)
        if session_cookie:
            identity = self.sessions.lookup(session_cookie)
            if identity is not None and not self.still_valid(identity):
                self.sessions.revoke(session_cookie)  # password changed or account removed
                return None
            return identity
        return None

    def still_valid(self, identity: Identity) -> bool:
        """The credential `identity` was proved with still stands: the token is not
        revoked, the password not changed, the account not removed."""
        kind, _, value = identity.credential.partition(":")
        if kind == "token":
            return self.store.token_exists(value)
        if kind == "password":
            return self._password_credential(identity.name) == identity.credential
        return not self.enabled

    def end_revoked_sessions(self) -> int:
        """Sign out every browser session whose credential no longer stands."""
        return self.sessions.revoke_where(lambda identity: not self.still_valid(identity))

    async def login(self, user: str, password: str, client: str) -> str:
        """A new session token, or LoginRefused. Every attempt takes a slot of the sign-in
        limit before the (slow, on purpose) hash runs: concurrent guesses can't get past
        it. The hash runs in a thread, at most MAX_CONCURRENT_HASHES at once."""
        who = client_key(client)
        wait = self.limiter.admit(who)
        if wait > 0:
            raise LoginRefused("too many failed sign-ins: try again later", retry_after=wait)
        encoded = self._hash(user) if user in ROLES else None
        # Unknown users cost the same time as known ones: no user name probing by timing.
        async with self._hashing:
            checked = await asyncio.to_thread(verify_password, password, encoded or _dummy_hash())
        ok = checked and encoded is not None
        if not ok:
            self.limiter.failed(who)
            log.warning("failed login for %r from %s", user[:32], client)
            raise LoginRefused("wrong user name or password")
        self.limiter.succeeded(who)
        log.info("%s signed in from %s", user, client)
        return self.sessions.create(user, ROLES[user], self._password_credential(user) or "")

    async def set_up(self, password: str, code: object, client: str) -> str:
        """Choose the admin password on the first visit, given the setup code; returns a
        session token. Wrong codes count as failed sign-ins."""
        check_new_password(password)
        expected = self.setup_code
        if expected is None:
            raise LoginRefused("the admin password is already set")
        who = client_key(client)
        wait = self.limiter.admit(who)
        if wait > 0:
            raise LoginRefused("too many failed attempts: try again later", retry_after=wait)
        if not setup_code.matches(expected, code):
            self.limiter.failed(who)
            log.warning("first-visit setup with a wrong setup code from %s", client)
            raise SetupRefused(
                "wrong setup code: it is in camgate's log (journalctl -u camgate), "
                "on the Pi's console, and shown by `camgate setup-code`"
            )
        async with self._hashing:
            encoded = await asyncio.to_thread(hash_password, password)
        if not self.needs_setup:  # another visitor was faster
            raise LoginRefused("the admin password is already set")
        self.store.set_password_hash(ADMIN, encoded)
        setup_code.remove(self.state_dir)
        self.limiter.succeeded(who)
        log.info("admin password set on first visit from %s", client)
        return self.sessions.create(ADMIN, Role.ADMIN, self._password_credential(ADMIN) or "")


@functools.cache
def _dummy_hash() -> str:
    return hash_password("not a password: equalises timing for unknown users")

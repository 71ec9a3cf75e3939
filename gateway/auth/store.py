"""The auth file in the state directory (auth.json, mode 0600): password hashes of the
admin and viewer accounts and the hashes of API tokens. Written atomically; re-read when
it changes on disk (`camgate password` / `camgate token` edit it while camgate runs)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.auth.roles import Identity, Role

FILE_NAME = "auth.json"
USERS = ("admin", "viewer")
TOKEN_PREFIX = "cg_"
TOKEN_BYTES = 32
MAX_TOKEN_NAME = 64


class AuthFileError(Exception):
    """auth.json can't be read or written; the message names the file."""


@dataclass(frozen=True, slots=True)
class TokenInfo:
    name: str
    role: Role
    created: float  # time.time()


class AuthStore:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME
        self._data: dict[str, Any] = {"users": {}, "tokens": []}
        self._mtime: tuple[int, int, int] | None = None
        self.version = 0  # goes up whenever the accounts or tokens may have changed
        self.reload()

    # --- file -------------------------------------------------------------------------

    def reload(self) -> bool:
        """Read the file if it changed since the last read (cheap: one stat); True if it
        changed."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            changed = self._mtime is not None
            self._data, self._mtime = {"users": {}, "tokens": []}, None
            self.version += changed
            return changed
        except OSError as exc:
            raise AuthFileError(f"{self.path}: {exc.strerror or exc}") from None
        # Nanoseconds, size and inode: two writes within one mtime tick still differ.
        mtime = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if mtime == self._mtime:
            return False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AuthFileError(f"{self.path}: cannot read: {exc}") from None
        if not isinstance(data, dict):
            raise AuthFileError(f"{self.path}: not an auth file")
        users = data.get("users")
        tokens = data.get("tokens")
        users = users if isinstance(users, dict) else {}
        tokens = tokens if isinstance(tokens, list) else []
        self._data = {"users": users, "tokens": [t for t in tokens if _valid_token(t)]}
        self._mtime = mtime
        self.version += 1
        return True

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self._data, out, indent=2)
            os.replace(temporary, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise AuthFileError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
        self._mtime = None
        self.reload()

    # --- passwords --------------------------------------------------------------------

    def password_hash(self, user: str) -> str | None:
        self.reload()
        value = self._data["users"].get(user)
        return value if isinstance(value, str) else None

    def set_password_hash(self, user: str, encoded: str | None) -> None:
        if user not in USERS:
            raise ValueError(f"unknown user {user!r}")
        self.reload()
        if encoded is None:
            self._data["users"].pop(user, None)
        else:
            self._data["users"][user] = encoded
        self._save()

    # --- tokens -----------------------------------------------------------------------

    def create_token(self, name: str, role: Role) -> str:
        """A new API token (shown once: only its hash is kept)."""
        if not name or len(name) > MAX_TOKEN_NAME or not name.isprintable():
            raise ValueError(f"a token name is 1-{MAX_TOKEN_NAME} printable characters")
        self.reload()
        if any(t["name"] == name for t in self._data["tokens"]):
            raise ValueError(f"a token named {name!r} exists: revoke it first")
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        self._data["tokens"].append(
            {
                "name": name,
                "role": role.name.lower(),
                "hash": _token_hash(token),
                "created": time.time(),
            }
        )
        self._save()
        return token

    def revoke_token(self, name: str) -> bool:
        self.reload()
        before = len(self._data["tokens"])
        self._data["tokens"] = [t for t in self._data["tokens"] if t["name"] != name]
        if len(self._data["tokens"]) == before:
            return False
        self._save()
        return True

    def tokens(self) -> list[TokenInfo]:
        self.reload()
        return [
            TokenInfo(t["name"], Role[t["role"].upper()], float(t.get("created", 0)))
            for t in self._data["tokens"]
        ]

    def identify_token(self, token: str) -> Identity | None:
        self.reload()
        digest = _token_hash(token)
        for t in self._data["tokens"]:
            if hmac.compare_digest(t["hash"], digest):
                name, role = f"token:{t['name']}", Role[t["role"].upper()]
                credential = f"token:{digest}"
                return Identity(name, role, False, credential, holder=f"token:{digest[:16]}")
        return None

    def token_exists(self, digest: str) -> bool:
        """An API token with this hash is still there (not revoked)."""
        self.reload()
        return any(hmac.compare_digest(t["hash"], digest) for t in self._data["tokens"])


def _token_hash(token: str) -> str:
    # Tokens are 256 random bits: a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _valid_token(entry: object) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("name"), str)
        and isinstance(entry.get("hash"), str)
        and entry.get("role") in ("admin", "viewer")
    )

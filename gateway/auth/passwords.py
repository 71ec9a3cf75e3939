"""Password hashing with scrypt (OpenSSL's, through hashlib): slow and memory-hard, so a
stolen auth file is expensive to brute-force. The parameters travel in each hash, so they
can be raised later without breaking stored passwords. Pure: no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# 32 MiB and ~0.1 s per hash on a desktop core (a few tenths on a Pi): affordable for a
# login, costly for a guesser.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SALT_BYTES, KEY_BYTES = 16, 32
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024  # bounded work per attempt
PREFIX = "scrypt"


class PasswordError(ValueError):
    """A password that can't be used; the message is safe to show."""


def check_new_password(password: object) -> str:
    if not isinstance(password, str):
        raise PasswordError("password must be a string")
    if len(password) < MIN_PASSWORD_CHARS:
        raise PasswordError(f"password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise PasswordError(f"password must have at most {MAX_PASSWORD_CHARS} characters")
    return password


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join((PREFIX, str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(key)))


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time check; False for a malformed hash rather than an exception."""
    try:
        prefix, n, r, p, salt, key = encoded.split("$")
        if prefix != PREFIX or len(password) > MAX_PASSWORD_CHARS:
            return False
        expected = base64.b64decode(key, validate=True)
        actual = _scrypt(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=128 * r * (n + p + 2) + 2**20,
        dklen=KEY_BYTES,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")

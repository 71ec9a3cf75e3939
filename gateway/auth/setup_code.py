"""The one-time setup code: whoever chooses the admin password on the first visit must
know it. It is printed in camgate's log, on the Pi's console (the boot report) and by
`camgate setup-code`, so only someone who can see the gateway's own output can claim it,
not a web page that reached the port (e.g. through DNS rebinding)."""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from pathlib import Path

FILE_NAME = "setup-code"
# No 0/O, 1/I/L: read off a console and typed on a phone. 8 of 31 symbols: ~40 bits, and
# wrong codes count as failed sign-ins (5 per client per 5 minutes).
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 8


def new_code() -> str:
    code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{code[:4]}-{code[4:]}"


def normalise(code: str) -> str:
    """What the visitor typed, as compared: case, spaces and dashes don't matter."""
    return "".join(c for c in code.upper() if c.isalnum())


def matches(expected: str, given: object) -> bool:
    if not isinstance(given, str) or len(given) > 64:
        return False
    return hmac.compare_digest(normalise(expected).encode(), normalise(given).encode())


def read(state_dir: Path) -> str | None:
    """The code kept in the state directory, or None."""
    try:
        text = (state_dir / FILE_NAME).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return (
        text if len(normalise(text)) == LENGTH and set(normalise(text)) <= set(ALPHABET) else None
    )


def ensure(state_dir: Path) -> str:
    """The kept code, or a new one written there (mode 0600). A restart keeps the code
    the log and the console already showed. A state directory that can't be written
    still gets a code: it is then only in the log."""
    code = read(state_dir)
    if code is not None:
        return code
    code = new_code()
    with contextlib.suppress(OSError):
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = state_dir / FILE_NAME
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(code + "\n")
    return code


def remove(state_dir: Path) -> None:
    """The admin password is set: the code is no use any more."""
    with contextlib.suppress(FileNotFoundError, OSError):
        (state_dir / FILE_NAME).unlink()

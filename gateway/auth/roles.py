"""Roles, per-route access rules and the identity of a caller. Pure: no I/O.

Every HTTP handler declares who may call it with @access(...); the auth middleware refuses
any route that declares nothing (fail closed), and a test walks every route to check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar


class Role(IntEnum):
    """Ordered: a higher role may do everything a lower one may."""

    VIEWER = 1  # watch cameras, read state and snapshots
    ADMIN = 2  # also steer PTZ, discover cameras, manage tokens


class Access(IntEnum):
    PUBLIC = 0  # the login page, health, CORS preflights
    VIEWER = Role.VIEWER
    ADMIN = Role.ADMIN

    def allows(self, role: Role | None) -> bool:
        return self is Access.PUBLIC or (role is not None and role >= self)


@dataclass(frozen=True, slots=True)
class Identity:
    name: str  # "admin", "viewer", or "token:<name>"
    role: Role
    via_cookie: bool  # cookie sessions need CSRF checks; bearer tokens don't
    # What it was proved with, checked again on every use: the fingerprint of the password
    # hash a session signed in with, or an API token's hash ("": nothing to check).
    credential: str = ""
    # Who holds it: one sign-in session or one API token. It owns the WHEP sessions it opens.
    holder: str = ""

    @property
    def can_steer(self) -> bool:
        return self.role >= Role.ADMIN


ACCESS_ATTRIBUTE = "camgate_access"
H = TypeVar("H", bound=Callable[..., object])


def access(level: Access) -> Callable[[H], H]:
    """Declare who may call an HTTP handler."""

    def mark(handler: H) -> H:
        setattr(handler, ACCESS_ATTRIBUTE, level)
        return handler

    return mark


def declared_access(handler: object) -> Access | None:
    level = getattr(handler, ACCESS_ATTRIBUTE, None)
    return level if isinstance(level, Access) else None

"""What every configuration section is built from: a frozen msgspec Struct.

Each field is declared once (YAML key, type, bounds, default); msgspec checks the file's
values against it and gateway.config_errors phrases what it finds for the user. This
module imports nothing of ours, so source modules can declare their camera's settings
without importing gateway.config.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import msgspec


class ConfigError(ValueError):
    """A config problem, phrased for the user: `<key path>: <what is wrong> (line N)`."""


class Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A config section: immutable, and an unknown key in the file is an error."""

    # Fields never shown by repr() (credentials): they must not reach a log line.
    __secrets__: ClassVar[frozenset[str]] = frozenset()

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in self.__struct_fields__
            if name not in self.__secrets__
        )
        return f"{type(self).__name__}({shown})"


# Field names whose values are never repeated in an error message (gateway.config_errors).
SECRET_KEYS = frozenset(
    {"source", "username", "password", "credential", "admin_password", "viewer_password"}
)

DROP = object()  # a shorthand's answer: leave the key out (its default applies)


def shorthand(convert: Callable[[Any], Any]) -> msgspec.Meta:
    """Annotate a field that also takes a short form in YAML (`tls: self-signed`): `convert`
    turns the short form into the long one before validation and raises ValueError, phrased
    for the user, when the value is neither."""
    return msgspec.Meta(extra={"shorthand": convert})


def default_in_words(text: str) -> msgspec.Meta:
    """Annotate a field whose default is worked out (from other fields, the machine or
    another module's defaults): what docs/configuration.md says about it."""
    return msgspec.Meta(extra={"default": text})


def invalid(key: str, why: str) -> ValueError:
    """An error found by a section's own checks (__post_init__), for field `key` of it:
    gateway.config_errors puts the section's path in front."""
    return ValueError(f"{key}: {why}")


def set_field(section: Section, name: str, value: Any) -> None:
    """Normalise a field in __post_init__ (the struct is frozen once built)."""
    msgspec.structs.force_setattr(section, name, value)

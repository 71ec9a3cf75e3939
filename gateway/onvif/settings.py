"""An ONVIF camera's `onvif:` block: where its control endpoint is, and how to sign in."""

from __future__ import annotations

from typing import Annotated, ClassVar

from msgspec import Meta, field

from gateway.config_model import Section, invalid, set_field, shorthand


def _switch_off(value: object) -> object:
    return "off" if value is False else value  # YAML reads a bare `off` as false


class OnvifConfig(Section, frozen=True):
    """An ONVIF camera's control endpoint: streams (when the camera has no `source`) and PTZ."""

    __secrets__: ClassVar[frozenset[str]] = frozenset({"password"})  # never in repr, logs

    host: Annotated[str, Meta(min_length=1)]  # name or IP address (IPv6 without brackets)
    port: Annotated[int, Meta(ge=1, le=65535)] = 80
    username: str | None = None
    password: str | None = None
    profile: str | None = None  # media profile name or token; None: the first H.264 one
    # The camera's second, smaller stream for grid tiles: "auto" = the lowest-resolution
    # H.264 profile smaller than the main one, "off" = none, else a profile name or token.
    substream: Annotated[str, shorthand(_switch_off)] = "auto"
    timeout_s: Annotated[float, Meta(ge=0.5, le=60)] = field(default=5.0, name="timeout")

    def __post_init__(self) -> None:
        host = self.host.strip()
        if not host:
            raise invalid("host", "must be a non-empty string")
        if "://" in host or "/" in host or "@" in host:
            raise invalid("host", "must be a host name or IP address, not a URL")
        set_field(self, "host", host.removeprefix("[").removesuffix("]"))
        if self.password is not None and not self.username:
            raise invalid("password", "needs `username` too")
        if not self.username:
            set_field(self, "username", None)
            set_field(self, "password", None)
        if self.profile is not None:
            if not self.profile.strip():
                raise invalid("profile", "must be a profile name or token, or left out")
            set_field(self, "profile", self.profile.strip())
        if not self.substream.strip():
            raise invalid("substream", "must be auto, off or a profile name or token")
        set_field(self, "substream", self.substream.strip())

    @property
    def address(self) -> str:
        """`host:port` as it goes in a URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

"""The PTZ backend contract (docs/ptz.md): what a PtzController drives.

Every number a backend receives is a camera-independent fraction (velocities and relative
moves in -1..1, absolute zoom in 0..1, speeds in 0..1); the backend scales it into the
camera's own ranges. Backends raise PtzError with a message that is safe to show a user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class PtzError(Exception):
    """A PTZ command failed; str(error) is readable and never contains a credential."""


@dataclass(frozen=True, slots=True)
class PtzCapabilities:
    """What a camera's PTZ can do; all False means "no PTZ" (the viewer shows no pad)."""

    pan_tilt: bool = False
    zoom: bool = False
    presets: bool = False
    home: bool = False
    absolute: bool = False
    relative: bool = False
    max_presets: int = 0

    @property
    def any(self) -> bool:
        """True when the camera can move at all."""
        return self.pan_tilt or self.zoom

    def to_json(self) -> dict[str, bool | int]:
        return {
            "pan_tilt": self.pan_tilt,
            "zoom": self.zoom,
            "presets": self.presets,
            "home": self.home,
            "absolute": self.absolute,
            "relative": self.relative,
            "max_presets": self.max_presets,
        }


NO_PTZ = PtzCapabilities()


@dataclass(frozen=True, slots=True)
class Preset:
    token: str
    name: str


@runtime_checkable
class PtzBackend(Protocol):
    capabilities: PtzCapabilities

    async def continuous_move(
        self, pan: float, tilt: float, zoom: float, timeout: float | None = None
    ) -> float | None:
        """Move at these fractions (-1..1) of the camera's maximum speed until stopped, or
        until `timeout` seconds have passed where the camera can stop by itself (ONVIF's
        Timeout). Returns after how long the camera stops by itself (None: unknown)."""
        ...

    async def stop(self, pan_tilt: bool = True, zoom: bool = True) -> None: ...

    async def relative_move(
        self, pan: float, tilt: float, zoom: float, speed: float | None
    ) -> None:
        """Move by fractions (-1..1) of the range; speed 0..1 or None for the default."""
        ...

    async def absolute_move(
        self, pan: float, tilt: float, zoom: float, speed: float | None
    ) -> None:
        """Move to pan/tilt in -1..1 and zoom in 0..1 of the range."""
        ...

    async def goto_preset(self, token: str) -> None: ...

    async def set_preset(self, name: str) -> str:
        """Save the current position as a new preset; returns its token."""
        ...

    async def remove_preset(self, token: str) -> None: ...

    async def home(self, speed: float | None) -> None: ...

    async def presets(self) -> list[Preset]: ...

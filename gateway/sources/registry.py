"""Camera kinds: every source module registers its kind here, and only here.

A kind says how a camera's config names it (`source: demo`, an rtsp:// URL, or its own
block alone such as `onvif: {...}`), the settings model of its block under the camera, how
to describe the camera before it connects, and how to build its Source. The config
(gateway.config) takes its camera keys and checks from here, and the gateway (app.py)
builds and describes cameras from here: a new kind is a new module under gateway/sources/
that calls register().
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.config_model import Section, invalid

if TYPE_CHECKING:
    from gateway.config import CameraConfig
    from gateway.media.limits import StreamLimits
    from gateway.onvif.session import OnvifSession
    from gateway.sources.base import Source


@dataclass(frozen=True)
class SourceSetup:
    """What building a camera's Source may use besides its config."""

    camera: CameraConfig
    limits: StreamLimits | None = None
    # The camera's ONVIF connection (cameras with an `onvif:` block), shared with its PTZ.
    onvif: OnvifSession | None = None
    # Told the camera's stream address (redacted) once a kind learns it at run time.
    on_resolved: Callable[[str], None] | None = None


@dataclass(frozen=True)
class CameraKind:
    name: str  # also the key of its settings block under a camera, if it has one
    model: str  # what it is, in words (Home Assistant's device model)
    build: Callable[[SourceSetup], Source]  # imports heavy libraries here, not at import
    describe: Callable[[CameraConfig], str]  # shown before it connects: never a credential
    settings: type[Section] | None = None  # the model of its block; None: no block
    # `source:` values that mean this kind, and how to say them in an error.
    takes_source: Callable[[str], bool] | None = None
    source_hint: str = ""
    # Raises ValueError (phrased for the user, never repeating the value) on a bad source.
    check_source: Callable[[str], None] | None = None
    # Without `source`, the block alone makes the camera this kind (`picamera: {...}`).
    block_alone: bool = False
    # The camera's second, smaller stream, when it has one (None: this kind has none).
    build_substream: Callable[[SourceSetup], Source | None] | None = None
    # Other kinds' blocks a camera of this kind may carry (RTSP: `onvif` for PTZ only).
    carries: frozenset[str] = field(default_factory=frozenset)
    # Model of a camera of this kind that also carries these blocks (an RTSP camera with
    # ONVIF PTZ is an "ONVIF camera" to Home Assistant).
    model_with: dict[str, str] = field(default_factory=dict)

    def settings_of(self, camera: CameraConfig) -> Any:
        """The camera's block for this kind (its defaults when the file has none)."""
        return getattr(camera, self.name)


_KINDS: dict[str, CameraKind] = {}
_discovered = False


def register(kind: CameraKind) -> CameraKind:
    if kind.name in _KINDS and _KINDS[kind.name] != kind:
        raise ValueError(f"camera kind {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind
    return kind


def kinds() -> tuple[CameraKind, ...]:
    """Every camera kind, once each module of gateway/sources/ has been imported."""
    global _discovered
    if not _discovered:
        _discovered = True
        package = importlib.import_module("gateway.sources")
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"gateway.sources.{module.name}")
    return tuple(_KINDS[name] for name in sorted(_KINDS))  # the same order however imported


def kind_named(name: str) -> CameraKind:
    for kind in kinds():
        if kind.name == name:
            return kind
    raise KeyError(name)


def kind_for(source: str | None, blocks: set[str]) -> CameraKind:
    """The kind of a camera with this `source` (None: none given) and these blocks, or
    ValueError phrased by gateway.config_model.invalid()."""
    found = _kind_for(source, blocks)
    for block in sorted(blocks - {found.name} - found.carries):
        owner = kind_named(block)
        users = [k.name for k in kinds() if k.name == block or block in k.carries]
        where = (
            f"only for `source: {block}`"
            if owner.takes_source is not None
            else f"only for {' and '.join(users)} cameras"
        )
        article = "an" if block[0] in "aeiou" else "a"
        raise invalid(
            block, f"the {found.name} camera cannot have {article} `{block}` block ({where})"
        )
    return found


def _kind_for(source: str | None, blocks: set[str]) -> CameraKind:
    if source is None:
        for kind in kinds():
            if kind.block_alone and kind.name in blocks:
                return kind
        alone = " or ".join(f"`{k.name}`" for k in kinds() if k.block_alone)
        raise ValueError(f"needs `source` ({_source_forms()}) or a block of its own ({alone})")
    for kind in kinds():
        if kind.takes_source is not None and kind.takes_source(source):
            if kind.check_source is not None:
                try:
                    kind.check_source(source)
                except ValueError as exc:
                    raise invalid("source", str(exc)) from None
            return kind
    raise invalid("source", f"must be {_source_forms()}")


def _source_forms() -> str:
    hints = [k.source_hint for k in kinds() if k.source_hint]
    return ", ".join(hints[:-1]) + f" or {hints[-1]}" if len(hints) > 1 else "".join(hints)

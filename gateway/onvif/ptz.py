"""ONVIF PTZ as a PtzBackend (docs/ptz.md).

Callers speak camera-independent fractions; cameras each have their own ranges (a pan
velocity of -0.5..0.5, degrees, ...). The ranges and space URIs come from the camera once
(GetNodes, GetConfigurationOptions), so a command costs exactly one request on the wire.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import Any

from gateway.onvif.session import MediaProfile, OnvifError, OnvifFault, OnvifSession, seconds
from gateway.ptz.backend import NO_PTZ, Preset, PtzCapabilities, PtzError

log = logging.getLogger("camgate.onvif")

GENERIC = "GenericSpace"  # the URI suffix of ONVIF's normalised spaces
GENERIC_SPEED = "GenericSpeedSpace"


@dataclass(frozen=True)
class Axis:
    low: float
    high: float

    def signed(self, fraction: float) -> float:
        """-1..1 around zero: 1 is `high`, -1 is `low`, 0 is 0 (velocities, translations)."""
        value = fraction * (self.high if fraction >= 0 else -self.low)
        return self.clamp(value)

    def linear(self, fraction: float, low: float = -1.0, high: float = 1.0) -> float:
        """`low..high` onto the whole range (positions, speeds)."""
        value = self.low + (fraction - low) / (high - low) * (self.high - self.low)
        return self.clamp(value)

    def clamp(self, value: float) -> float:
        return min(max(value, min(self.low, self.high)), max(self.low, self.high))


@dataclass(frozen=True)
class Space:
    uri: str
    x: Axis
    y: Axis | None = None  # None for zoom and speed spaces


@dataclass(frozen=True)
class PtzLayout:
    """What a camera's PTZ node and configuration allow, in its own units."""

    profile_token: str
    pan_tilt_velocity: Space | None = None
    zoom_velocity: Space | None = None
    pan_tilt_translation: Space | None = None
    zoom_translation: Space | None = None
    pan_tilt_position: Space | None = None
    zoom_position: Space | None = None
    pan_tilt_speed: Space | None = None
    zoom_speed: Space | None = None
    max_presets: int = 0
    home: bool = False
    move_timeout_s: float | None = None
    timeout_range: tuple[float, float] | None = None  # ContinuousMove Timeout (PTZTimeout)

    @property
    def capabilities(self) -> PtzCapabilities:
        return PtzCapabilities(
            pan_tilt=self.pan_tilt_velocity is not None,
            zoom=self.zoom_velocity is not None,
            presets=self.max_presets > 0,
            home=self.home,
            absolute=self.pan_tilt_position is not None or self.zoom_position is not None,
            relative=self.pan_tilt_translation is not None or self.zoom_translation is not None,
            max_presets=self.max_presets,
        )


_SPACE_FIELDS = {
    "pan_tilt_velocity": "ContinuousPanTiltVelocitySpace",
    "zoom_velocity": "ContinuousZoomVelocitySpace",
    "pan_tilt_translation": "RelativePanTiltTranslationSpace",
    "zoom_translation": "RelativeZoomTranslationSpace",
    "pan_tilt_position": "AbsolutePanTiltPositionSpace",
    "zoom_position": "AbsoluteZoomPositionSpace",
    "pan_tilt_speed": "PanTiltSpeedSpace",
    "zoom_speed": "ZoomSpeedSpace",
}


def parse_layout(profile: MediaProfile, node: Any, options: Any | None) -> PtzLayout:
    """A layout from a GetNodes node and (when the camera gave them) the configuration's
    options, whose spaces may be narrower than the node's."""
    spaces: dict[str, Space | None] = {}
    for name, tag in _SPACE_FIELDS.items():
        chosen = _space(_get(options, "Spaces", tag)) or _space(
            _get(node, "SupportedPTZSpaces", tag)
        )
        spaces[name] = chosen
    presets = _get(node, "MaximumNumberOfPresets")
    low, high = (
        seconds(_get(options, "PTZTimeout", "Min")),
        seconds(_get(options, "PTZTimeout", "Max")),
    )
    return PtzLayout(
        profile_token=profile.token,
        max_presets=int(presets) if isinstance(presets, int | float) else 0,
        home=bool(_get(node, "HomeSupported")),
        move_timeout_s=profile.ptz_timeout_s,
        timeout_range=(low, high) if low is not None and high is not None and low <= high else None,
        **spaces,  # type: ignore[arg-type]
    )


class OnvifPtz:
    """PtzBackend over an OnvifSession. `capabilities` is all False until `load()` (or the
    first command) has read the camera; cameras without PTZ stay that way."""

    def __init__(self, session: OnvifSession, profile_token: str | None = None) -> None:
        self.session = session
        self.profile_token = profile_token  # None: the session's profile, or the first PTZ one
        self.capabilities: PtzCapabilities = NO_PTZ
        self.layout: PtzLayout | None = None
        self.loaded = False  # True once the camera has told us what it can do
        self.timeout_refused = False  # the camera faulted on ContinuousMove's Timeout
        self._load_lock = asyncio.Lock()  # start-up and a first command read it once

    @property
    def move_timeout_s(self) -> float | None:
        """The camera's DefaultPTZTimeout: a ContinuousMove sent without a Timeout ends by
        itself after this long."""
        return self.layout.move_timeout_s if self.layout else None

    # --- discovery --------------------------------------------------------------------

    async def load(self) -> PtzCapabilities:
        """Read the camera's PTZ node and ranges (again). Raises PtzError if unreachable."""
        async with self._load_lock:
            return await self._load()

    async def _load(self) -> PtzCapabilities:
        try:
            self.layout = await self._read_layout()
        except OnvifError as exc:
            raise PtzError(str(exc)) from None
        self.capabilities = self.layout.capabilities if self.layout else NO_PTZ
        self.loaded = True
        if self.layout is None:
            log.info("camera %s: no PTZ", self.session.camera)
        else:
            log.info("camera %s: PTZ %s", self.session.camera, _summary(self.capabilities))
        return self.capabilities

    async def _read_layout(self) -> PtzLayout | None:
        profile = await self._ptz_profile()
        if profile is None:
            return None
        try:
            nodes = await self.session.call("ptz", "GetNodes")
        except OnvifFault:
            return None  # a PTZ service that cannot describe its node cannot be driven
        except OnvifError as exc:
            if exc.breaks_session:
                raise
            return None  # no PTZ service
        nodes = list(nodes or [])
        node = next((n for n in nodes if _get(n, "token") == profile.ptz_node_token), None)
        if node is None and nodes:
            node = nodes[0]
        if node is None:
            return None
        try:
            options = await self.session.call(
                "ptz", "GetConfigurationOptions", {"ConfigurationToken": profile.ptz_config_token}
            )
        except OnvifFault:
            options = None  # some cameras refuse it: the node's spaces still hold the ranges
        return parse_layout(profile, node, options)

    async def _ptz_profile(self) -> MediaProfile | None:
        profiles = await self.session.profiles()
        if self.profile_token is not None:
            found = next((p for p in profiles if p.token == self.profile_token), None)
            return found if found is not None and found.ptz_config_token else None
        try:
            chosen: MediaProfile | None = await self.session.select_profile()
        except OnvifError:
            chosen = None  # the configured profile is missing: the stream reports that
        if chosen is not None and chosen.ptz_config_token:
            return chosen
        return next((p for p in profiles if p.ptz_config_token), None)

    async def _ready(self) -> PtzLayout:
        if not self.loaded:
            async with self._load_lock:
                if not self.loaded:  # unless a load under way has just done it
                    await self._load()
        if self.layout is None:
            raise PtzError("this camera has no PTZ")
        return self.layout

    # --- PtzBackend -------------------------------------------------------------------

    async def continuous_move(
        self, pan: float, tilt: float, zoom: float, timeout: float | None = None
    ) -> float | None:
        layout = await self._ready()
        pan, tilt, zoom = (_fraction(v, -1.0, 1.0) for v in (pan, tilt, zoom))
        velocity: dict[str, Any] = {}
        # Every axis the camera has is sent, zeros included: an omitted axis keeps moving.
        if layout.pan_tilt_velocity is not None:
            velocity["PanTilt"] = _vector2(layout.pan_tilt_velocity, pan, tilt, Axis.signed)
        elif pan or tilt:
            raise PtzError("this camera cannot pan or tilt")
        if layout.zoom_velocity is not None:
            velocity["Zoom"] = _vector1(layout.zoom_velocity, zoom, Axis.signed)
        elif zoom:
            raise PtzError("this camera cannot zoom")
        params: dict[str, Any] = {"Velocity": velocity}
        wanted = self._timeout(layout, timeout)
        if wanted is None:
            await self._call("ContinuousMove", params)
            return self.move_timeout_s
        try:
            await self._request(
                "ContinuousMove", {**params, "Timeout": dt.timedelta(seconds=wanted)}
            )
        except OnvifFault as refused:
            # Some cameras fault on any Timeout: if the same move without one works, send
            # none from now on (the camera's DefaultPTZTimeout still ends it).
            await self._call("ContinuousMove", params)
            self.timeout_refused = True
            log.info(
                "camera %s: ContinuousMove with a Timeout refused (%s): sending none from now on",
                self.session.camera,
                refused,
            )
            return self.move_timeout_s
        except OnvifError as exc:
            raise PtzError(str(exc)) from None
        return wanted

    def _timeout(self, layout: PtzLayout, timeout: float | None) -> float | None:
        """ContinuousMove's Timeout in whole seconds (what cameras parse most reliably),
        within the camera's PTZTimeout range; None to send none."""
        if timeout is None or self.timeout_refused or not math.isfinite(timeout):
            return None
        wanted = float(max(1, math.ceil(timeout)))
        if layout.timeout_range is not None:
            low, high = layout.timeout_range
            wanted = min(max(wanted, low), high)
        return wanted if wanted > 0 else None

    async def stop(self, pan_tilt: bool = True, zoom: bool = True) -> None:
        await self._ready()
        if pan_tilt or zoom:
            await self._call("Stop", {"PanTilt": pan_tilt, "Zoom": zoom})

    async def relative_move(
        self, pan: float, tilt: float, zoom: float, speed: float | None
    ) -> None:
        layout = await self._ready()
        pan, tilt, zoom = (_fraction(v, -1.0, 1.0) for v in (pan, tilt, zoom))
        translation: dict[str, Any] = {}
        if layout.pan_tilt_translation is not None:
            translation["PanTilt"] = _vector2(layout.pan_tilt_translation, pan, tilt, Axis.signed)
        elif pan or tilt:
            raise PtzError("this camera cannot move by a relative amount (pan/tilt)")
        if layout.zoom_translation is not None:
            translation["Zoom"] = _vector1(layout.zoom_translation, zoom, Axis.signed)
        elif zoom:
            raise PtzError("this camera cannot zoom by a relative amount")
        if not translation:
            raise PtzError("this camera has no relative moves")
        await self._call("RelativeMove", {"Translation": translation, **self._speed(speed)})

    async def absolute_move(
        self, pan: float, tilt: float, zoom: float, speed: float | None
    ) -> None:
        layout = await self._ready()
        pan, tilt = _fraction(pan, -1.0, 1.0), _fraction(tilt, -1.0, 1.0)
        zoom = _fraction(zoom, 0.0, 1.0)
        position: dict[str, Any] = {}
        if layout.pan_tilt_position is not None:
            position["PanTilt"] = _vector2(layout.pan_tilt_position, pan, tilt, Axis.linear)
        if layout.zoom_position is not None:
            position["Zoom"] = _vector1(
                layout.zoom_position, zoom, lambda axis, f: axis.linear(f, 0.0, 1.0)
            )
        if not position:
            raise PtzError("this camera has no absolute positions")
        await self._call("AbsoluteMove", {"Position": position, **self._speed(speed)})

    async def goto_preset(self, token: str) -> None:
        await self._presets_ready()
        await self._call("GotoPreset", {"PresetToken": token})

    async def set_preset(self, name: str) -> str:
        await self._presets_ready()
        reply = await self._call("SetPreset", {"PresetName": name})
        token = getattr(reply, "PresetToken", reply)
        if not isinstance(token, str) or not token:
            raise PtzError("the camera saved the preset but did not say its token")
        return token

    async def remove_preset(self, token: str) -> None:
        await self._presets_ready()
        await self._call("RemovePreset", {"PresetToken": token})

    async def home(self, speed: float | None) -> None:
        layout = await self._ready()
        if not layout.home:
            raise PtzError("this camera has no home position")
        await self._call("GotoHomePosition", self._speed(speed))

    async def presets(self) -> list[Preset]:
        await self._presets_ready()
        reply = await self._call("GetPresets", {})
        presets = []
        for raw in reply or []:
            token = str(_get(raw, "token") or "")
            if token:
                presets.append(Preset(token=token, name=str(_get(raw, "Name") or token)))
        return presets

    # --- helpers ----------------------------------------------------------------------

    async def _presets_ready(self) -> PtzLayout:
        layout = await self._ready()
        if layout.max_presets <= 0:
            raise PtzError("this camera has no presets")
        return layout

    def _speed(self, speed: float | None) -> dict[str, Any]:
        """{"Speed": ...} scaled into the camera's speed spaces, or {} for its default."""
        layout = self.layout
        if speed is None or layout is None:
            return {}
        speed = _fraction(speed, 0.0, 1.0)
        vector: dict[str, Any] = {}

        def scale(axis: Axis, f: float) -> float:
            return axis.linear(f, 0.0, 1.0)

        if layout.pan_tilt_speed is not None:
            space = layout.pan_tilt_speed
            value = scale(space.x, speed)
            vector["PanTilt"] = {"x": value, "y": value, "space": space.uri}
        if layout.zoom_speed is not None:
            vector["Zoom"] = _vector1(layout.zoom_speed, speed, scale)
        return {"Speed": vector} if vector else {}

    async def _call(self, operation: str, params: dict[str, Any]) -> Any:
        try:
            return await self._request(operation, params)
        except OnvifError as exc:
            raise PtzError(str(exc)) from None

    async def _request(self, operation: str, params: dict[str, Any]) -> Any:
        """One request for our profile; raises OnvifError."""
        assert self.layout is not None
        return await self.session.call(
            "ptz", operation, {"ProfileToken": self.layout.profile_token, **params}
        )


def _fraction(value: float, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PtzError(f"{value!r} is not a number")
    return min(max(float(value), low), high)


def _vector2(space: Space, x: float, y: float, scale: Any) -> dict[str, Any]:
    y_axis = space.y or space.x
    return {"x": scale(space.x, x), "y": scale(y_axis, y), "space": space.uri}


def _vector1(space: Space, x: float, scale: Any) -> dict[str, Any]:
    return {"x": scale(space.x, x), "space": space.uri}


def _get(obj: Any, *path: str) -> Any:
    for name in path:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return obj


def _axis(raw: Any) -> Axis | None:
    low, high = _get(raw, "Min"), _get(raw, "Max")
    try:
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(low) and math.isfinite(high)) or low == high:
        return None
    return Axis(low, high)


def _space(candidates: Any) -> Space | None:
    """The space to use from a list of them: the generic (normalised) one if offered,
    else the first the camera lists. None if there is none with a usable range."""
    spaces = []
    for raw in list(candidates or []):
        uri, x = _get(raw, "URI"), _axis(_get(raw, "XRange"))
        if not uri or x is None:
            continue
        y_raw = _get(raw, "YRange")
        spaces.append(Space(str(uri), x, _axis(y_raw) if y_raw is not None else None))
    generic = [s for s in spaces if s.uri.endswith((GENERIC, GENERIC_SPEED))]
    return next(iter(generic or spaces), None)


def _summary(caps: PtzCapabilities) -> str:
    names = [name for name, on in caps.to_json().items() if on is True]
    return ", ".join(names) + (f", {caps.max_presets} presets" if caps.max_presets else "")

"""One ONVIF connection per camera, shared by its video source and its PTZ backend.

The session connects lazily, bounds every request by the configured timeout (the library
has none of its own worth having: 90 s), turns every failure into an OnvifError whose
message is safe to show, and reconnects on the next use after a failure that may mean the
camera went away (reboot, network, clock reset): a SOAP fault reply does not count, the
camera answered.

Quirks of onvif-zeep-async 4.x handled here (see tests/rig/onvif_device.py):
- `import onvif` calls logging.basicConfig(level=INFO): imported once, off the event loop,
  with the root logger's handlers and level put back.
- ONVIFCamera() builds aiohttp sessions (so it runs inside the loop), deletes the
  http(s)_proxy environment variables (put back) and must always be closed.
- no_cache=True (the default opens a SQLite WSDL cache in the user's cache directory),
  adjust_time=True (cameras with a wrong clock reject every WS-Security timestamp).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal
from urllib.parse import quote

from gateway.onvif.settings import OnvifConfig
from gateway.rtsp.url import parse_url, redact

log = logging.getLogger("camgate.onvif")

Service = Literal["devicemgmt", "media", "ptz"]
CLOSE_TIMEOUT_S = 2.0
AUTH_MESSAGE = "the camera rejected the ONVIF user name or password"
_SERVICE_NAMES = {"devicemgmt": "device", "media": "media", "ptz": "PTZ"}
_PROXY_VARIABLES = ("http_proxy", "https_proxy")
_UNSPECIFIED_HOSTS = ("0.0.0.0", "::", "")


class OnvifError(Exception):
    """An ONVIF request failed. The message is readable and never holds a credential."""

    # Whether the connection is suspect and must be rebuilt before the next request.
    breaks_session = True


class OnvifFault(OnvifError):
    """The camera answered with a SOAP fault: the connection itself is fine."""

    breaks_session = False


class OnvifUnsupported(OnvifError):
    """The camera does not offer the service (e.g. no PTZ service)."""

    breaks_session = False


@dataclass(frozen=True)
class DeviceInfo:
    manufacturer: str
    model: str
    firmware: str
    serial: str


@dataclass(frozen=True)
class MediaProfile:
    token: str
    name: str
    encoding: str | None  # "H264", "JPEG", "MPEG4" (ONVIF Media 1)
    width: int | None
    height: int | None
    ptz_config_token: str | None  # None: the profile has no PTZ configuration
    ptz_node_token: str | None
    ptz_timeout_s: float | None  # DefaultPTZTimeout: how long a ContinuousMove lasts


@dataclass(frozen=True, repr=False)
class StreamUri:
    """A profile's RTSP URL. `url` carries the credentials: hand it to the RTSP client only."""

    public: str  # safe to show: user info and password-like parameters removed
    url: str

    def __repr__(self) -> str:
        return f"StreamUri({self.public!r})"


# --- the library, imported once -------------------------------------------------------

_onvif: ModuleType | None = None
_import_lock = threading.Lock()  # two sessions importing at once must not swap handlers


def _import_onvif() -> ModuleType:
    with _import_lock:
        root = logging.getLogger()
        level, handlers = root.level, list(root.handlers)
        try:
            import onvif
        finally:
            root.setLevel(level)
            root.handlers[:] = handlers
        return onvif


async def load_onvif() -> ModuleType:
    """`onvif`, imported in a thread: it takes ~0.1-0.7 s, and video keeps flowing meanwhile."""
    global _onvif
    if _onvif is None:
        loaded = sys.modules.get("onvif")
        _onvif = loaded if loaded is not None else await asyncio.to_thread(_import_onvif)
    return _onvif


# --- the session ----------------------------------------------------------------------


class OnvifSession:
    def __init__(self, config: OnvifConfig, camera: str = "") -> None:
        self.config = config
        self.camera = camera or config.host  # for log lines
        self.description = f"onvif://{config.address}"  # safe to show
        self.timeout = config.timeout_s
        self.connects = 0  # successful connections: 1, plus one per reconnect
        self.device: DeviceInfo | None = None
        self._client: Any = None  # onvif.ONVIFCamera while connected
        self._services: dict[str, Any] = {}
        self._profiles: list[MediaProfile] | None = None
        self._lock = asyncio.Lock()
        self._service_lock = asyncio.Lock()
        self._profiles_lock = asyncio.Lock()  # the stream and PTZ ask at once at start
        self._closed = False

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def connect(self) -> Any:
        """Connect unless connected; OnvifError if the camera cannot be reached or refuses us.
        Returns the library's client (onvif.ONVIFCamera)."""
        client = self._client
        if client is not None:
            return client
        async with self._lock:
            if self._client is None:
                if self._closed:
                    raise OnvifError("the ONVIF session is closed")
                await self._connect()
            return self._client

    async def _connect(self) -> None:
        onvif = await load_onvif()
        saved = {name: os.environ[name] for name in _PROXY_VARIABLES if name in os.environ}
        try:
            client = onvif.ONVIFCamera(
                self.config.host,
                self.config.port,
                self.config.username,
                self.config.password,
                # Explicit: 4.0's default pointed next to the package instead of into it.
                wsdl_dir=str(Path(next(iter(onvif.__path__))) / "wsdl"),
                no_cache=True,
                adjust_time=True,
            )
        finally:
            os.environ.update(saved)  # the constructor deletes them, for the whole process
        try:
            await self._bounded(client.update_xaddrs, "GetServices")
            # GetServices may be allowed without credentials: this one proves them.
            info = await self._bounded(lambda: _device_info(client), "GetDeviceInformation")
        except BaseException:
            await _close_quietly(client)
            raise
        self.device = DeviceInfo(
            manufacturer=_text(info, "Manufacturer"),
            model=_text(info, "Model"),
            firmware=_text(info, "FirmwareVersion"),
            serial=_text(info, "SerialNumber"),
        )
        self._client, self._services, self._profiles = client, {}, None
        self.connects += 1
        log.info(
            "camera %s: ONVIF %s %s at %s%s",
            self.camera,
            self.device.manufacturer or "camera",
            self.device.model,
            self.config.address,
            " (reconnected)" if self.connects > 1 else "",
        )

    async def call(
        self, service: Service, operation: str, params: dict[str, Any] | None = None
    ) -> Any:
        """One request, bounded by the timeout. Raises OnvifError (or a subclass)."""
        client = await self.connect()
        try:
            proxy = await self._service(client, service, operation)
            return await self._bounded(lambda: getattr(proxy, operation)(params), operation)
        except OnvifError as exc:
            if exc.breaks_session:
                await self._drop(client, exc)
            raise

    async def _service(self, client: Any, service: Service, operation: str) -> Any:
        # One creation at a time: the library awaits setup before caching, so two
        # concurrent first calls (stream + PTZ at start) would each open an HTTP session
        # and leak one.
        async with self._service_lock:
            proxy = self._services.get(service)
            if proxy is None:
                proxy = await self._bounded(lambda: client.create_onvif_service(service), operation)
                self._services[service] = proxy
            return proxy

    async def _bounded(self, request: Callable[[], Awaitable[Any]], operation: str) -> Any:
        """Await `request()` within the timeout; every failure (building the request
        included: the library raises some synchronously) becomes an OnvifError."""
        try:
            async with asyncio.timeout(self.timeout):
                return await request()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._failure(exc, operation) from None  # no chained credentials

    def _failure(self, exc: Exception, operation: str) -> OnvifError:
        """The readable form of whatever onvif-zeep-async, zeep or aiohttp raised."""
        import aiohttp
        import zeep.exceptions
        from onvif.util import is_auth_error

        onvif = _onvif
        if isinstance(exc, TimeoutError):
            return OnvifError(f"the camera did not answer within {self.timeout:g} s")
        if isinstance(exc, zeep.exceptions.Fault):
            if is_auth_error(exc):
                return OnvifError(AUTH_MESSAGE)
            reason = self._scrub(exc.message or "no reason given")
            return OnvifFault(f"the camera refused {operation}: {reason}")
        if isinstance(exc, zeep.exceptions.TransportError):
            if exc.status_code in (401, 403):
                return OnvifError(AUTH_MESSAGE)
            return OnvifError(f"the camera answered {operation} with HTTP {exc.status_code}")
        if isinstance(exc, zeep.exceptions.Error):
            return OnvifError(f"the camera sent an invalid reply to {operation}")
        if isinstance(exc, aiohttp.ClientConnectorError):
            why = os.strerror(exc.errno) if exc.errno else "connection failed"
            return OnvifError(f"cannot reach the camera's ONVIF service at {self._where}: {why}")
        if isinstance(exc, aiohttp.ClientError | OSError):
            return OnvifError(f"the camera at {self._where} dropped the ONVIF connection")
        if onvif is not None and isinstance(exc, onvif.ONVIFError):
            text = str(exc)
            if "support service" in text:
                service = next((s for s in _SERVICE_NAMES if f"service: {s} " in text), "")
                name = _SERVICE_NAMES.get(service, "requested")
                return OnvifUnsupported(f"the camera has no ONVIF {name} service")
            log.debug("camera %s: %s failed: %s", self.camera, operation, self._scrub(text))
            return OnvifFault(f"could not build the ONVIF {operation} request")
        log.warning("camera %s: %s failed: %s", self.camera, operation, type(exc).__name__)
        return OnvifError(f"ONVIF {operation} failed ({type(exc).__name__})")

    @property
    def _where(self) -> str:
        return self.config.address

    def _scrub(self, text: str) -> str:
        """Camera-provided text, printable, short, without our password (in case it echoes)."""
        text = "".join(c if c.isprintable() else " " for c in text)[:200].strip()
        secret = self.config.password
        if secret:
            for form in (secret, quote(secret, safe="")):
                text = text.replace(form, "***")
        return text

    async def _drop(self, client: Any, why: Exception) -> None:
        """Forget a suspect connection (if still current); the next call reconnects."""
        if client is None or self._client is not client:
            return
        self._client, self._services, self._profiles = None, {}, None
        log.info("camera %s: ONVIF connection dropped: %s", self.camera, why)
        await _close_quietly(client)

    async def close(self) -> None:
        self._closed = True
        async with self._lock:
            client, self._client = self._client, None
            self._services, self._profiles = {}, None
        if client is not None:
            await _close_quietly(client)

    # --- media ------------------------------------------------------------------------

    async def device_info(self) -> DeviceInfo:
        await self.connect()
        assert self.device is not None
        return self.device

    async def profiles(self) -> list[MediaProfile]:
        """The media profiles, cached for the life of the connection."""
        await self.connect()
        async with self._profiles_lock:  # one GetProfiles, however many ask at once
            profiles = self._profiles
            if profiles is None:
                reply = await self.call("media", "GetProfiles")
                profiles = self._profiles = [_profile(p) for p in reply or []]
        return profiles

    async def select_profile(self, wanted: str | None = None) -> MediaProfile:
        """The configured profile (token, then name, then name ignoring case); without one,
        the first H.264 profile (WebRTC carries H.264 only), else the first."""
        profiles = await self.profiles()
        if not profiles:
            raise OnvifError("the camera reports no media profiles")
        wanted = wanted if wanted is not None else self.config.profile
        if wanted is None:
            return next((p for p in profiles if p.encoding == "H264"), profiles[0])
        for match in (
            lambda p: p.token == wanted,
            lambda p: p.name == wanted,
            lambda p: p.name.casefold() == wanted.casefold(),
        ):
            found = next((p for p in profiles if match(p)), None)
            if found is not None:
                return found
        offered = ", ".join(
            p.name if p.name == p.token else f"{p.name} ({p.token})" for p in profiles
        )
        raise OnvifError(f"the camera has no media profile {wanted!r} (it has: {offered})")

    async def select_substream(self, setting: str) -> MediaProfile | None:
        """The profile of the camera's second stream: `setting` "auto" picks the
        lowest-resolution H.264 profile smaller than the main one (None when there is
        none), else the profile it names (OnvifError if the camera has none such)."""
        main = await self.select_profile()
        if setting != "auto":
            return await self.select_profile(setting)
        others = [
            p
            for p in await self.profiles()
            if p.encoding == "H264" and p.token != main.token and _pixels(p) < _pixels(main)
        ]
        if not others:
            return None
        return min(others, key=_pixels)

    async def stream_uri(self, profile: MediaProfile | str) -> StreamUri:
        """The profile's RTSP URL (RTP-Unicast over RTSP), with our credentials added for
        the RTSP session: cameras return it without them and ask for them on DESCRIBE."""
        token = profile if isinstance(profile, str) else profile.token
        reply = await self.call(
            "media",
            "GetStreamUri",
            {
                "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                "ProfileToken": token,
            },
        )
        uri = str(getattr(reply, "Uri", "") or "").strip()
        try:
            parsed = parse_url(uri)
        except ValueError:
            raise OnvifError(
                f"the camera's stream URI for profile {token!r} is not an rtsp:// URL"
            ) from None
        if parsed.host in _UNSPECIFIED_HOSTS:  # some cameras answer rtsp://0.0.0.0/...
            uri = uri.replace(parsed.netloc, f"{_bracket(self.config.host)}:{parsed.port}", 1)
            uri = uri.replace(f"[{parsed.host}]", _bracket(self.config.host), 1)
        return StreamUri(public=redact(uri), url=self._with_credentials(uri, parsed.username))

    def _with_credentials(self, uri: str, existing_user: str | None) -> str:
        user = self.config.username
        if user is None or existing_user is not None:
            return uri  # no credentials, or the camera put its own in
        scheme, sep, rest = uri.partition("://")
        secret = quote(self.config.password or "", safe="")
        return f"{scheme}{sep}{quote(user, safe='')}:{secret}@{rest}"


# --- helpers --------------------------------------------------------------------------


async def _device_info(client: Any) -> Any:
    service = await client.create_devicemgmt_service()
    return await service.GetDeviceInformation()


async def _close_quietly(client: Any) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await client.close()


def _pixels(profile: MediaProfile) -> int:
    """The profile's picture size; unknown counts as smaller than any known (a camera
    that does not say is not the main stream's size)."""
    return (profile.width or 0) * (profile.height or 0)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _field(obj: Any, *path: str) -> Any:
    """obj.a.b... with None for anything missing (zeep objects and dicts alike)."""
    for name in path:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return obj


def _text(obj: Any, *path: str) -> str:
    value = _field(obj, *path)
    return "" if value is None else str(value).strip()


def _number(obj: Any, *path: str) -> int | None:
    value = _field(obj, *path)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def seconds(value: Any) -> float | None:
    """An xs:duration as zeep gives it (timedelta or isodate Duration) in seconds."""
    if value is None:
        return None
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    return None


def _profile(raw: Any) -> MediaProfile:
    token = _text(raw, "token")
    ptz = _field(raw, "PTZConfiguration")
    return MediaProfile(
        token=token,
        name=_text(raw, "Name") or token,
        encoding=_text(raw, "VideoEncoderConfiguration", "Encoding") or None,
        width=_number(raw, "VideoEncoderConfiguration", "Resolution", "Width"),
        height=_number(raw, "VideoEncoderConfiguration", "Resolution", "Height"),
        ptz_config_token=_text(ptz, "token") or None if ptz is not None else None,
        ptz_node_token=_text(ptz, "NodeToken") or None if ptz is not None else None,
        ptz_timeout_s=seconds(_field(ptz, "DefaultPTZTimeout")),
    )

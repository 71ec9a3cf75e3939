"""A strict ONVIF test camera (Device, Media, PTZ) speaking SOAP 1.2 over HTTP on loopback.

    device = OnvifTestDevice(rtsp_url=rtsp.url("/cam"))   # port=0: any free port
    await device.start()                      # device.port, device.xaddr
    ... drive camgate / onvif-zeep-async against device.host:device.port ...
    request = await device.wait_for("Stop", timeout=5)    # -> Request(time, operation, args)
    assert device.faults == [] and device.errors == []
    await device.stop()

Requests and replies are held to the WSDL/XSD files shipped in the `onvif-zeep-async`
package (`onvif/wsdl/`, found without importing `onvif`): every request body is validated
against the schema before it is handled, every reply before it is sent (a reply that fails
is a bug here: it lands in `device.errors` and the client gets env:Receiver/ter:Action).

State for tests
    `requests`  every accepted request as `Request(time.monotonic(), operation, args)`;
                `args` mirrors the XML (local names, attributes as keys, text as str,
                repeated elements as lists, `x`/`y` attributes as float).
    `security_tokens`  (password digest, nonce, created) of every UsernameToken received,
                for tests that look for them where they must not be (logs).
    `faults`    every fault sent, as `FaultRecord(time, operation, code, subcodes, reason)`.
    `wait_for(operation, timeout)`  the oldest accepted request of that operation not yet
                returned by wait_for (so it works whether the request came before or after
                the call); TimeoutError otherwise.
    `position`  (pan, tilt, zoom), integrated from the current velocity; pan/tilt clamp to
                -1..1, zoom to 0..1 (the ONVIF generic position spaces). `moving`, `presets`
                ({token: Preset}), `home`.
    Knobs       `delay` (s, before every answer; settable at run time), `fail_next(op, fault)`,
                `ptz=False`, `reboot()`, `clock_offset` (device clock minus ours, s),
                `pan_tilt_velocity`/`zoom_velocity` ranges, `speed`, `max_presets`,
                `accepts_timeout=False` (ContinuousMove with any Timeout faults).

Motion model: ContinuousMove velocity v moves an axis at `speed * v / max(|range|)` position
units per second (the range's end is full speed), until Stop, another move, the request's
Timeout or DefaultPTZTimeout (`default_timeout`). Relative/Absolute/GotoPreset/GotoHome moves
land at once. An axis a ContinuousMove omits keeps its motion; an axis held at its end stop
reports MOVING until stopped or timed out. SetPreset while moving is
refused (env:Receiver/ter:Action/ter:MovingPTZ), as the PTZ spec allows.

Security policy: WS-Security UsernameToken with PasswordDigest
(Base64(SHA1(nonce + created + password))) on every operation except those in
`unauthenticated` (default: GetSystemDateAndTime only; the ONVIF Core spec's PRE_AUTH class
also allows GetCapabilities, GetServices, GetServiceCapabilities, GetHostname, GetWsdlUrl,
and many cameras do; tests can widen the set). PasswordText is refused unless
`allow_password_text`. `Created` must be within `max_clock_skew` (300 s) of the device clock
(host clock + `clock_offset`) and a nonce may not be reused. Failures answer env:Sender/
ter:NotAuthorized with HTTP `auth_fault_status` (400 as the SOAP 1.2 HTTP binding says for
Sender faults; some cameras send 401, both reach zeep as a Fault). `username=None` disables
authentication.

Faults (HTTP 400 for env:Sender, 500 otherwise): malformed XML -> ter:WellFormed; not
application/soap+xml -> HTTP 415; SOAP 1.1 envelope -> env:VersionMismatch; unknown
mustUnderstand header -> env:MustUnderstand; body element from another namespace than the
endpoint's -> ter:TagMismatch; unknown operation -> env:Receiver/ter:ActionNotSupported;
schema violations -> ter:InvalidArgs (structure) or ter:InvalidArgVal (values);
unknown profile -> ter:InvalidArgVal/ter:NoProfile (ter:NoPTZProfile without PTZ); bad
velocity/position/translation/speed/timeout -> ter:InvalidArgVal/ter:InvalidVelocity/
InvalidPosition/InvalidTranslation/InvalidSpeed/TimeoutNotSupported; bad space URI ->
ter:SpaceNotSupported; unknown preset -> ter:NoToken; unknown node/config -> ter:NoEntity/NoConfig.

onvif-zeep-async 4.3 (the client camgate uses) -- what its author should know:
- `ONVIFCamera(host, port, user, passwd, wsdl_dir=<bundled>, no_cache=False,
  adjust_time=False)`; build it inside the running loop (it creates aiohttp sessions),
  always `await cam.close()` (one ClientSession per service). It pops http(s)_proxy from
  os.environ; importing `onvif` calls logging.basicConfig(level=INFO) and monkeypatches zeep
  (AnySimpleType values stay raw strings). Pass `no_cache=True`: the default opens a shared
  zeep SqliteCache file in the user cache dir (pointless: the WSDLs are local).
- The device service URL is always `http://host:port/onvif/device_service` (not
  discovered). `update_xaddrs()` calls GetServices(IncludeCapability=False) and falls back
  to GetCapabilities(Category=All) only if GetServices faults or lists nothing; other
  services use the XAddr the device advertised for the service's namespace (PTZ:
  ver20/ptz/wsdl, Media: ver10/media/wsdl). `nat_override=True` rewrites advertised
  host:port to the constructor's (not stream URIs). `cam.get_capabilities()` issues
  GetCapabilities lazily.
- `await cam.create_ptz_service()` / `create_media_service()` return a cached ONVIFService;
  for a service the device does not list it raises ONVIFError ("Device doesn`t support
  service"). Operations take one dict: `await ptz.ContinuousMove({"ProfileToken": t,
  "Velocity": {"PanTilt": {"x": .5, "y": 0}}, "Timeout": timedelta(seconds=1)})`
  (Timeout: timedelta or "PT1S"); replies are zeep objects (attribute access; `cam.to_dict`).
- Time: with `adjust_time=True` update_xaddrs() first sends GetSystemDateAndTime without
  WS-Security (`service.authless_<Op>()`), falls back to an authenticated call, and adds the
  device-minus-host offset to every later `Created`. Without it, a camera whose clock is off
  by more than its window rejects every call as NotAuthorized. `Created` has 1 s resolution.
- Errors are NOT wrapped in ONVIFError once the request is sent: a SOAP fault raises
  `zeep.exceptions.Fault` (`.message` = Reason, `.code` = "env:Sender", `.subcodes` = lxml
  QNames, e.g. `[QName(ter, "NotAuthorized")]`; `onvif.util.is_auth_error(exc)` recognises
  it); a timeout raises the builtin `TimeoutError` ("Request to ... timed out"); connection
  refused raises `aiohttp.ClientConnectorError`. Only request building raises ONVIFError.
- Timeouts default to 90 s total / 30 s connect / 90 s read. The only knob is
  `create_onvif_service(name, read_timeout=s)` (socket read timeout, first creation only).
  Wrap every call in `asyncio.timeout()` instead. A cancelled call still reaches the camera
  and the camera may execute it late (a late ContinuousMove after a Stop keeps moving):
  serialise PTZ commands per camera.
- `get_snapshot_uri(token)` / `get_snapshot(token)` use aiohttp with HTTP Digest middleware
  (this device serves its 16x16 JPEG without authentication).
- A device that leaves the `ter:` prefix of a fault subcode undeclared makes zeep raise
  `zeep.exceptions.XMLParseError` instead of Fault: catch `zeep.exceptions.Error` too.
- Discovery: the `wsdiscovery` package (not a dependency of onvif-zeep-async) skips loopback
  addresses; in a lo-only namespace call `wsd.addSourceAddr(ipaddress.ip_address("127.0.0.1"))`.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import copy
import datetime as dt
import functools
import hashlib
import hmac
import importlib.util
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from aiohttp import web
from lxml import etree

NS = {
    "env": "http://www.w3.org/2003/05/soap-envelope",
    "ter": "http://www.onvif.org/ver10/error",
    "tt": "http://www.onvif.org/ver10/schema",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tptz": "http://www.onvif.org/ver20/ptz/wsdl",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
}
SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TOKEN_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
DEVICE_PATH, MEDIA_PATH, PTZ_PATH = (
    "/onvif/device_service",
    "/onvif/media_service",
    "/onvif/ptz_service",
)
SNAPSHOT_PATH = "/onvif/snapshot"
SERVICE_PATHS = {DEVICE_PATH: "tds", MEDIA_PATH: "trt", PTZ_PATH: "tptz"}

_SPACES = "http://www.onvif.org/ver10/tptz/"
PAN_TILT_POSITION = _SPACES + "PanTiltSpaces/PositionGenericSpace"
PAN_TILT_TRANSLATION = _SPACES + "PanTiltSpaces/TranslationGenericSpace"
PAN_TILT_VELOCITY = _SPACES + "PanTiltSpaces/VelocityGenericSpace"
PAN_TILT_SPEED = _SPACES + "PanTiltSpaces/GenericSpeedSpace"
ZOOM_POSITION = _SPACES + "ZoomSpaces/PositionGenericSpace"
ZOOM_TRANSLATION = _SPACES + "ZoomSpaces/TranslationGenericSpace"
ZOOM_VELOCITY = _SPACES + "ZoomSpaces/VelocityGenericSpace"
ZOOM_SPEED = _SPACES + "ZoomSpaces/ZoomGenericSpeedSpace"
PAN_TILT_LIMITS, ZOOM_LIMITS, UNIT = (-1.0, 1.0), (0.0, 1.0), (-1.0, 1.0)
SPEED_RANGE = (0.0, 1.0)
PTZ_TIMEOUT_RANGE = (1.0, 600.0)
NODE_TOKEN, PTZ_CONFIG_TOKEN, VIDEO_SOURCE = "PTZNode_1", "PTZConfig_1", "VideoSource_1"

# 16x16 grey baseline JPEG served at the snapshot URI.
SNAPSHOT_JPEG = base64.b64decode(
    "/9j//gAQTGF2YzYyLjI4LjEwMgD/2wBDAAgEBAQEBAUFBQUFBQYGBgYGBgYGBgYGBgYHBwcICAgHBwcGBgcHCAgI"
    "CAkJCQgICAgJCQoKCgwMCwsODg4RERT/xABKAAEAAAAAAAAAAAAAAAAAAAAAAQEAAAAAAAAAAAAAAAAAAAAAEAEA"
    "AAAAAAAAAAAAAAAAAAAAEQEAAAAAAAAAAAAAAAAAAAAA/8AAEQgAEAAQAwEiAAIRAAMRAP/aAAwDAQACEQMRAD8A"
    "AA//2Q=="
)


def wsdl_dir() -> Path:
    """The WSDL/XSD directory shipped in onvif-zeep-async (located without importing it)."""
    spec = importlib.util.find_spec("onvif")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("onvif-zeep-async is not installed: its WSDLs define the device")
    return Path(next(iter(spec.submodule_search_locations))) / "wsdl"


@functools.cache
def schema() -> etree.XMLSchema:
    """One XMLSchema holding the types of devicemgmt.wsdl, media.wsdl and ptz.wsdl."""
    base = wsdl_dir()
    embedded: dict[str, bytes] = {}
    for name in ("devicemgmt.wsdl", "media.wsdl", "ptz.wsdl"):
        wsdl = etree.parse(str(base / name))
        node = wsdl.find("{*}types/{http://www.w3.org/2001/XMLSchema}schema")
        embedded[node.get("targetNamespace")] = etree.tostring(node)

    class Embedded(etree.Resolver):
        def resolve(self, url: str, pubid: str | None, context: Any) -> Any:
            if not url.startswith("embedded:"):
                return None
            text = embedded[url.removeprefix("embedded:")]
            return self.resolve_string(text, context, base_url=str(base / "embedded.xsd"))

    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(Embedded())
    imports = "".join(
        f'<xs:import namespace="{n}" schemaLocation="embedded:{n}"/>' for n in embedded
    )
    wrapper = f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">{imports}</xs:schema>'
    return etree.XMLSchema(etree.fromstring(wrapper, parser, base_url=str(base / "all.xsd")))


def el(qname: str, *children: Any, **attrs: Any) -> etree._Element:
    """`el("tt:Vector2D", x=0.5, y=0)`; children: elements, lists, text; None is skipped."""
    prefix, local = qname.split(":")
    node = etree.Element(f"{{{NS[prefix]}}}{local}")
    for key, value in attrs.items():
        if value is not None:
            node.set(key, _text(value))
    for child in children:
        if child is None:
            continue
        if isinstance(child, etree._Element):
            node.append(child)
        elif isinstance(child, list):
            node.extend(c for c in child if c is not None)
        else:
            node.text = _text(child)
    return node


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _q(qname: str) -> str:
    prefix, local = qname.split(":")
    return f"{{{NS[prefix]}}}{local}"


_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d*)?)S)?)?")


def parse_duration(text: str) -> float | None:
    """Seconds of an xs:duration made of days/hours/minutes/seconds; None otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if not match or text.strip() in ("P", "PT"):
        return None
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def format_duration(seconds: float) -> str:
    return f"PT{seconds:g}S"


def xml_args(node: etree._Element) -> dict[str, Any]:
    out: dict[str, Any] = {
        key: float(value) if key in ("x", "y") else value for key, value in node.attrib.items()
    }
    for child in node:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        value = xml_args(child) if len(child) or child.attrib else (child.text or "").strip()
        if name not in out:
            out[name] = value
        elif isinstance(out[name], list):
            out[name].append(value)
        else:
            out[name] = [out[name], value]
    return out


class SoapFault(Exception):
    """A SOAP 1.2 fault: code Sender|Receiver|VersionMismatch|MustUnderstand, ter: subcodes."""

    def __init__(
        self, code: str, *subcodes: str, reason: str = "", status: int | None = None
    ) -> None:
        super().__init__(f"env:{code} {'/'.join(subcodes)}: {reason}")
        self.code, self.subcodes, self.reason = code, subcodes, reason or "/".join(subcodes)
        self.status = status or (400 if code == "Sender" else 500)

    @classmethod
    def sender(cls, *subcodes: str, reason: str = "") -> SoapFault:
        return cls("Sender", *subcodes, reason=reason)

    @classmethod
    def receiver(cls, *subcodes: str, reason: str = "") -> SoapFault:
        return cls("Receiver", *subcodes, reason=reason)

    def envelope(self) -> bytes:
        code = el("env:Code", el("env:Value", f"env:{self.code}"))
        parent = code
        for subcode in self.subcodes:
            sub = el("env:Subcode", el("env:Value", f"ter:{subcode}"))
            parent.append(sub)
            parent = sub
        text = el("env:Text", self.reason)
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        return _envelope(el("env:Fault", code, el("env:Reason", text)))


def _envelope(body_child: etree._Element) -> bytes:
    nsmap = {p: NS[p] for p in ("env", "ter", "tt", "tds", "trt", "tptz")}
    envelope = etree.Element(_q("env:Envelope"), nsmap=nsmap)  # type: ignore[arg-type]
    etree.SubElement(envelope, _q("env:Body")).append(body_child)
    # keep ter: it is only used inside text (fault subcode values), zeep resolves it there
    etree.cleanup_namespaces(envelope, top_nsmap=nsmap, keep_ns_prefixes=["ter"])  # type: ignore[arg-type]
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


class Request(NamedTuple):
    time: float
    operation: str
    args: dict[str, Any]


class FaultRecord(NamedTuple):
    time: float
    operation: str | None
    code: str
    subcodes: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Profile:
    token: str
    width: int
    height: int
    ptz: bool = True
    name: str | None = None
    fps: int = 25
    bitrate_kbps: int = 4096
    rtsp_url: str | None = None  # overrides the device's rtsp_url for this profile


DEFAULT_PROFILES = (
    Profile("MainStream", 1920, 1080, ptz=True),
    Profile("SubStream", 640, 360, ptz=False),
)


@dataclass
class Preset:
    name: str
    position: tuple[float, float, float]


class OnvifTestDevice:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str | None = "admin",
        password: str = "secret",
        rtsp_url: str = "rtsp://127.0.0.1:8554/{profile}",
        profiles: Sequence[Profile] = DEFAULT_PROFILES,
        ptz: bool = True,
        *,
        name: str = "camgate-test",
        manufacturer: str = "camgate",
        model: str = "TestPTZ",
        pan_tilt_velocity: tuple[float, float] = UNIT,
        zoom_velocity: tuple[float, float] = UNIT,
        speed: float = 1.0,
        default_timeout: float = 10.0,
        accepts_timeout: bool = True,
        max_presets: int = 16,
        home_supported: bool = True,
        unauthenticated: Iterable[str] = ("GetSystemDateAndTime",),
        allow_password_text: bool = False,
        auth_fault_status: int = 400,
        max_clock_skew: float = 300.0,
        clock_offset: float = 0.0,
        delay: float = 0.0,
    ) -> None:
        """`rtsp_url` may contain `{profile}` (the profile token); stream URIs carry no
        credentials, as real cameras return them."""
        if len({p.token for p in profiles}) != len(profiles):
            raise ValueError("profile tokens must be unique")
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.rtsp_url, self.ptz = rtsp_url, ptz
        self.profiles = {p.token: p for p in profiles}
        self.name, self.manufacturer, self.model = name, manufacturer, model
        self.pan_tilt_velocity, self.zoom_velocity = pan_tilt_velocity, zoom_velocity
        self.speed, self.default_timeout = speed, default_timeout
        self.accepts_timeout = accepts_timeout
        self.max_presets, self.home_supported = max_presets, home_supported
        self.unauthenticated = frozenset(unauthenticated)
        self.allow_password_text, self.auth_fault_status = allow_password_text, auth_fault_status
        self.max_clock_skew, self.clock_offset = max_clock_skew, clock_offset
        self.delay = delay
        self.serial = "CG-0001"

        self.requests: list[Request] = []
        self.faults: list[FaultRecord] = []
        self.security_tokens: list[tuple[str, str, str]] = []
        self.errors: list[str] = []  # replies that failed schema validation: device bugs
        self.presets: dict[str, Preset] = {}
        self.home: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self._preset_counter = 0
        self._pos = [0.0, 0.0, 0.0]  # pan, tilt, zoom
        self._rate = [0.0, 0.0, 0.0]  # position units per second
        self._since = time.monotonic()
        self._until: float | None = None
        self._injected: dict[str, collections.deque[SoapFault]] = collections.defaultdict(
            collections.deque
        )
        self._nonces: dict[str, float] = {}
        self._consumed: dict[str, int] = collections.defaultdict(int)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        schema()  # compile now: a broken schema set fails start-up, not the first request

    # ---- lifecycle -------------------------------------------------------------------

    @property
    def xaddr(self) -> str:
        return self.url(DEVICE_PATH)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    async def start(self) -> None:
        app = web.Application()
        for path in SERVICE_PATHS:
            if path != PTZ_PATH or self.ptz:
                app.router.add_post(path, self._handle)
        app.router.add_get(SNAPSHOT_PATH, self._snapshot)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def reboot(self, downtime: float = 0.0) -> None:
        """Stop answering, halt any motion, come back on the same port after `downtime`."""
        await self.stop()
        self._set_rates(pan_tilt=(0.0, 0.0), zoom=0.0)
        await asyncio.sleep(downtime)
        await self.start()

    async def __aenter__(self) -> OnvifTestDevice:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- test API --------------------------------------------------------------------

    def fail_next(self, operation: str, fault: SoapFault | None = None) -> None:
        """Answer the next `operation` (after authentication) with `fault` instead."""
        self._injected[operation].append(
            fault or SoapFault.receiver("Action", reason="injected failure")
        )

    def requests_of(self, operation: str) -> list[Request]:
        return [r for r in self.requests if r.operation == operation]

    async def wait_for(self, operation: str, timeout: float = 5.0) -> Request:
        """The oldest `operation` request not yet returned by wait_for (waits for one)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(
                lambda: len(self.requests_of(operation)) > self._consumed[operation]
            )
            request = self.requests_of(operation)[self._consumed[operation]]
            self._consumed[operation] += 1
            return request

    @property
    def position(self) -> tuple[float, float, float]:
        self._advance()
        return (self._pos[0], self._pos[1], self._pos[2])

    @property
    def moving(self) -> bool:
        self._advance()
        return any(self._rate)

    def device_now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.clock_offset)

    # ---- HTTP / SOAP -----------------------------------------------------------------

    async def _snapshot(self, request: web.Request) -> web.Response:
        if request.query.get("profile") not in self.profiles:
            raise web.HTTPNotFound()
        return web.Response(body=SNAPSHOT_JPEG, content_type="image/jpeg")

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        operation: str | None = None
        try:
            if request.content_type != "application/soap+xml":
                raise SoapFault(
                    "Sender",
                    reason=f"{request.content_type}: expected application/soap+xml",
                    status=415,
                )
            operation, node, header = self._parse(SERVICE_PATHS[request.path], body)
            if operation not in self.unauthenticated:
                self._authenticate(header)
            self._validate(node)
            if self._injected[operation]:
                raise self._injected[operation].popleft()
            args = xml_args(node)
            reply = getattr(self, f"_{SERVICE_PATHS[request.path]}_{operation}")(node)
            if not schema().validate(reply):
                self.errors.append(f"{operation} reply: {schema().error_log.last_error}")
                raise SoapFault.receiver("Action", reason="device bug: invalid reply")
        except SoapFault as fault:
            return self._fault(operation, fault)
        except Exception as exc:  # a bug here: fail the test's errors check, answer like a camera
            self.errors.append(f"{operation}: {exc!r}")
            return self._fault(operation, SoapFault.receiver("Action", reason="device error"))
        self.requests.append(Request(time.monotonic(), str(operation), args))
        async with self._changed:
            self._changed.notify_all()
        return self._soap_response(_envelope(reply), 200)

    def _fault(self, operation: str | None, fault: SoapFault) -> web.Response:
        now = time.monotonic()
        self.faults.append(FaultRecord(now, operation, fault.code, fault.subcodes, fault.reason))
        return self._soap_response(fault.envelope(), fault.status)

    @staticmethod
    def _soap_response(body: bytes, status: int) -> web.Response:
        return web.Response(
            body=body,
            status=status,
            headers={"Content-Type": "application/soap+xml; charset=utf-8"},
        )

    def _parse(
        self, service: str, body: bytes
    ) -> tuple[str, etree._Element, etree._Element | None]:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)
        try:
            envelope = etree.fromstring(body, parser)
        except etree.XMLSyntaxError as exc:
            raise SoapFault.sender("WellFormed", reason=f"malformed XML: {exc}") from None
        if envelope.tag == f"{{{SOAP11_ENV}}}Envelope":
            raise SoapFault("VersionMismatch", reason="SOAP 1.1 envelope; SOAP 1.2 expected")
        if envelope.tag != _q("env:Envelope"):
            raise SoapFault.sender(
                "TagMismatch", reason=f"root is {envelope.tag}, not env:Envelope"
            )
        header, body_node = envelope.find("env:Header", NS), envelope.find("env:Body", NS)
        for block in header if header is not None else ():
            understood = block.tag == _q("wsse:Security")
            if block.get(_q("env:mustUnderstand")) in ("true", "1") and not understood:
                raise SoapFault("MustUnderstand", reason=f"header {block.tag} not understood")
        children = [c for c in body_node if isinstance(c.tag, str)] if body_node is not None else []
        if len(children) != 1:
            raise SoapFault.sender("InvalidArgs", reason="env:Body must hold one element")
        node = children[0]
        qname = etree.QName(node)
        if qname.namespace != NS[service]:
            raise SoapFault.sender(
                "TagMismatch", reason=f"{qname.namespace} is not served here ({NS[service]})"
            )
        if not hasattr(self, f"_{service}_{qname.localname}"):
            raise SoapFault.receiver(
                "ActionNotSupported", reason=f"{qname.localname} is not implemented"
            )
        return qname.localname, node, header

    def _validate(self, node: etree._Element) -> None:
        if schema().validate(node):
            return
        error = schema().error_log.last_error
        value_error = any(w in error.type_name for w in ("DATATYPE", "FACET", "VALUE"))
        raise SoapFault.sender(
            "InvalidArgVal" if value_error else "InvalidArgs", reason=error.message
        )

    def _authenticate(self, header: etree._Element | None) -> None:
        if self.username is None:
            return

        def refuse(why: str) -> SoapFault:
            return SoapFault(
                "Sender",
                "NotAuthorized",
                reason=f"Sender not Authorized: {why}",
                status=self.auth_fault_status,
            )

        token = header.find("wsse:Security/wsse:UsernameToken", NS) if header is not None else None
        if token is None:
            raise refuse("no WS-Security UsernameToken")
        user, password = token.find("wsse:Username", NS), token.find("wsse:Password", NS)
        nonce_node, created_node = token.find("wsse:Nonce", NS), token.find("wsu:Created", NS)
        if user is None or user.text != self.username or password is None:
            raise refuse("unknown user")
        kind = password.get("Type", f"{TOKEN_PROFILE}#PasswordText")
        if kind == f"{TOKEN_PROFILE}#PasswordText":
            if not self.allow_password_text or password.text != self.password:
                raise refuse("PasswordText refused")
            return
        if kind != f"{TOKEN_PROFILE}#PasswordDigest" or nonce_node is None or created_node is None:
            raise refuse("PasswordDigest with Nonce and Created required")
        self.security_tokens.append(
            ((password.text or "").strip(), nonce_node.text or "", created_node.text or "")
        )
        try:
            nonce = base64.b64decode(nonce_node.text or "", validate=True)
            created = dt.datetime.fromisoformat(created_node.text or "")
        except ValueError:
            raise refuse("bad Nonce or Created") from None
        created_text = (created_node.text or "").encode()
        digest = base64.b64encode(
            hashlib.sha1(nonce + created_text + self.password.encode()).digest()
        )
        if not hmac.compare_digest(digest, (password.text or "").strip().encode()):
            raise refuse("wrong password digest")
        if created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)
        if abs((created - self.device_now()).total_seconds()) > self.max_clock_skew:
            raise refuse(f"Created {created_node.text} is outside the device clock window")
        now = time.monotonic()
        self._nonces = {n: t for n, t in self._nonces.items() if t > now}
        if nonce_node.text in self._nonces:
            raise refuse("nonce replayed")
        self._nonces[nonce_node.text or ""] = now + 2 * self.max_clock_skew

    # ---- device service --------------------------------------------------------------

    def _services(self) -> list[tuple[str, str, str]]:
        """(prefix, path, capability name) of each service this device offers."""
        found = [("tds", DEVICE_PATH, "Device"), ("trt", MEDIA_PATH, "Media")]
        return [*found, ("tptz", PTZ_PATH, "PTZ")] if self.ptz else found

    def _tds_GetDeviceInformation(self, node: etree._Element) -> etree._Element:
        return el(
            "tds:GetDeviceInformationResponse",
            el("tds:Manufacturer", self.manufacturer),
            el("tds:Model", self.model),
            el("tds:FirmwareVersion", "1.0.0"),
            el("tds:SerialNumber", self.serial),
            el("tds:HardwareId", self.model),
        )

    def _tds_GetSystemDateAndTime(self, node: etree._Element) -> etree._Element:
        now = self.device_now()
        stamp = el(
            "tt:UTCDateTime",
            el(
                "tt:Time",
                el("tt:Hour", now.hour),
                el("tt:Minute", now.minute),
                el("tt:Second", now.second),
            ),
            el(
                "tt:Date", el("tt:Year", now.year), el("tt:Month", now.month), el("tt:Day", now.day)
            ),
        )
        local = copy.deepcopy(stamp)
        local.tag = _q("tt:LocalDateTime")
        return el(
            "tds:GetSystemDateAndTimeResponse",
            el(
                "tds:SystemDateAndTime",
                el("tt:DateTimeType", "NTP"),
                el("tt:DaylightSavings", False),
                el("tt:TimeZone", el("tt:TZ", "UTC0")),
                stamp,
                local,
            ),
        )

    def _tds_GetCapabilities(self, node: etree._Element) -> etree._Element:
        wanted = {c.text for c in node.findall("tds:Category", NS)} or {"All"}
        offered = {name for _, _, name in self._services()}
        if not wanted <= offered | {"All"}:
            raise SoapFault.receiver(
                "ActionNotSupported", "NoSuchService", reason=f"no {sorted(wanted - offered)}"
            )
        caps = {
            "Device": el(
                "tt:Device",
                el("tt:XAddr", self.url(DEVICE_PATH)),
                el(
                    "tt:System",
                    [
                        el(f"tt:{flag}", False)
                        for flag in (
                            "DiscoveryResolve",
                            "DiscoveryBye",
                            "RemoteDiscovery",
                            "SystemBackup",
                            "SystemLogging",
                            "FirmwareUpgrade",
                        )
                    ],
                    el("tt:SupportedVersions", el("tt:Major", 2), el("tt:Minor", 60)),
                ),
            ),
            "Media": el(
                "tt:Media",
                el("tt:XAddr", self.url(MEDIA_PATH)),
                el(
                    "tt:StreamingCapabilities",
                    el("tt:RTPMulticast", False),
                    el("tt:RTP_TCP", True),
                    el("tt:RTP_RTSP_TCP", True),
                ),
            ),
            "PTZ": el("tt:PTZ", el("tt:XAddr", self.url(PTZ_PATH))),
        }
        order = [name for name in ("Device", "Media", "PTZ") if name in offered]
        chosen = [caps[n] for n in order if "All" in wanted or n in wanted]
        return el("tds:GetCapabilitiesResponse", el("tds:Capabilities", chosen))

    def _service_capabilities(self, prefix: str) -> etree._Element:
        if prefix == "tds":
            return el(
                "tds:Capabilities",
                el("tds:Network"),
                el("tds:Security", UsernameToken=True),
                el("tds:System"),
            )
        if prefix == "trt":
            return el(
                "trt:Capabilities",
                el("trt:ProfileCapabilities", MaximumNumberOfProfiles=len(self.profiles)),
                el("trt:StreamingCapabilities", RTP_TCP=True, RTP_RTSP_TCP=True),
                SnapshotUri=True,
            )
        return el("tptz:Capabilities", EFlip=False, Reverse=False)

    def _tds_GetServices(self, node: etree._Element) -> etree._Element:
        include = node.findtext("tds:IncludeCapability", namespaces=NS) in ("true", "1")
        services = [
            el(
                "tds:Service",
                el("tds:Namespace", NS[prefix]),
                el("tds:XAddr", self.url(path)),
                el("tds:Capabilities", self._service_capabilities(prefix)) if include else None,
                el("tds:Version", el("tt:Major", 2), el("tt:Minor", 60)),
            )
            for prefix, path, _ in self._services()
        ]
        return el("tds:GetServicesResponse", services)

    def _tds_GetServiceCapabilities(self, node: etree._Element) -> etree._Element:
        caps = self._service_capabilities("tds")
        return el("tds:GetServiceCapabilitiesResponse", caps)

    def _tds_GetNetworkInterfaces(self, node: etree._Element) -> etree._Element:
        interface = el(
            "tds:NetworkInterfaces",
            el("tt:Enabled", True),
            el(
                "tt:Info",
                el("tt:Name", "eth0"),
                el("tt:HwAddress", "02:00:00:c0:ff:ee"),
                el("tt:MTU", 1500),
            ),
            el(
                "tt:IPv4",
                el("tt:Enabled", True),
                el(
                    "tt:Config",
                    el("tt:Manual", el("tt:Address", self.host), el("tt:PrefixLength", 8)),
                    el("tt:DHCP", False),
                ),
            ),
            token="eth0",
        )
        return el("tds:GetNetworkInterfacesResponse", interface)

    # ---- media service ---------------------------------------------------------------

    def _profile(self, node: etree._Element, prefix: str) -> Profile:
        token = node.findtext(f"{prefix}:ProfileToken", namespaces=NS)
        if token not in self.profiles:
            raise SoapFault.sender("InvalidArgVal", "NoProfile", reason=f"no profile {token!r}")
        return self.profiles[token]

    def _profile_xml(self, profile: Profile, tag: str) -> etree._Element:
        main = max(self.profiles.values(), key=lambda p: p.width * p.height)
        encoder = el(
            "tt:VideoEncoderConfiguration",
            el("tt:Name", f"{profile.token}Encoder"),
            el("tt:UseCount", 1),
            el("tt:Encoding", "H264"),
            el("tt:Resolution", el("tt:Width", profile.width), el("tt:Height", profile.height)),
            el("tt:Quality", 5.0),
            el(
                "tt:RateControl",
                el("tt:FrameRateLimit", profile.fps),
                el("tt:EncodingInterval", 1),
                el("tt:BitrateLimit", profile.bitrate_kbps),
            ),
            el("tt:H264", el("tt:GovLength", profile.fps * 2), el("tt:H264Profile", "High")),
            el(
                "tt:Multicast",
                el("tt:Address", el("tt:Type", "IPv4"), el("tt:IPv4Address", "0.0.0.0")),
                el("tt:Port", 0),
                el("tt:TTL", 1),
                el("tt:AutoStart", False),
            ),
            el("tt:SessionTimeout", "PT60S"),
            token=f"{profile.token}Encoder",
        )
        source = el(
            "tt:VideoSourceConfiguration",
            el("tt:Name", "VideoSourceConfig"),
            el("tt:UseCount", len(self.profiles)),
            el("tt:SourceToken", VIDEO_SOURCE),
            el("tt:Bounds", x=0, y=0, width=main.width, height=main.height),
            token="VideoSourceConfig",
        )
        ptz = self._ptz_configuration("tt:PTZConfiguration") if profile.ptz and self.ptz else None
        return el(
            tag,
            el("tt:Name", profile.name or profile.token),
            source,
            encoder,
            ptz,
            token=profile.token,
            fixed=True,
        )

    def _trt_GetProfiles(self, node: etree._Element) -> etree._Element:
        profiles = [self._profile_xml(p, "trt:Profiles") for p in self.profiles.values()]
        return el("trt:GetProfilesResponse", profiles)

    def _trt_GetProfile(self, node: etree._Element) -> etree._Element:
        profile = self._profile(node, "trt")
        return el("trt:GetProfileResponse", self._profile_xml(profile, "trt:Profile"))

    def _media_uri(self, uri: str) -> etree._Element:
        return el(
            "trt:MediaUri",
            el("tt:Uri", uri),
            el("tt:InvalidAfterConnect", False),
            el("tt:InvalidAfterReboot", False),
            el("tt:Timeout", "PT0S"),
        )

    def _trt_GetStreamUri(self, node: etree._Element) -> etree._Element:
        profile = self._profile(node, "trt")
        if node.findtext("trt:StreamSetup/tt:Stream", namespaces=NS) != "RTP-Unicast":
            raise SoapFault.sender(
                "InvalidArgVal", "InvalidStreamSetup", reason="only RTP-Unicast is offered"
            )
        uri = (profile.rtsp_url or self.rtsp_url).replace("{profile}", profile.token)
        return el("trt:GetStreamUriResponse", self._media_uri(uri))

    def _trt_GetSnapshotUri(self, node: etree._Element) -> etree._Element:
        profile = self._profile(node, "trt")
        uri = f"{self.url(SNAPSHOT_PATH)}?profile={profile.token}"
        return el("trt:GetSnapshotUriResponse", self._media_uri(uri))

    def _trt_GetServiceCapabilities(self, node: etree._Element) -> etree._Element:
        return el("trt:GetServiceCapabilitiesResponse", self._service_capabilities("trt"))

    # ---- PTZ service: descriptions ---------------------------------------------------

    def _spaces(self) -> etree._Element:
        def space2d(tag: str, uri: str, xr: tuple[float, float], yr: tuple[float, float]):
            return el(tag, el("tt:URI", uri), _range("tt:XRange", xr), _range("tt:YRange", yr))

        def space1d(tag: str, uri: str, xr: tuple[float, float]) -> etree._Element:
            return el(tag, el("tt:URI", uri), _range("tt:XRange", xr))

        pt_velocity = self.pan_tilt_velocity
        return el(
            "tt:SupportedPTZSpaces",
            space2d(
                "tt:AbsolutePanTiltPositionSpace",
                PAN_TILT_POSITION,
                PAN_TILT_LIMITS,
                PAN_TILT_LIMITS,
            ),
            space1d("tt:AbsoluteZoomPositionSpace", ZOOM_POSITION, ZOOM_LIMITS),
            space2d("tt:RelativePanTiltTranslationSpace", PAN_TILT_TRANSLATION, UNIT, UNIT),
            space1d("tt:RelativeZoomTranslationSpace", ZOOM_TRANSLATION, UNIT),
            space2d(
                "tt:ContinuousPanTiltVelocitySpace", PAN_TILT_VELOCITY, pt_velocity, pt_velocity
            ),
            space1d("tt:ContinuousZoomVelocitySpace", ZOOM_VELOCITY, self.zoom_velocity),
            space1d("tt:PanTiltSpeedSpace", PAN_TILT_SPEED, SPEED_RANGE),
            space1d("tt:ZoomSpeedSpace", ZOOM_SPEED, SPEED_RANGE),
        )

    def _node_xml(self) -> etree._Element:
        return el(
            "tptz:PTZNode",
            el("tt:Name", "PTZ"),
            self._spaces(),
            el("tt:MaximumNumberOfPresets", self.max_presets),
            el("tt:HomeSupported", self.home_supported),
            token=NODE_TOKEN,
            FixedHomePosition=False,
        )

    def _ptz_configuration(self, tag: str) -> etree._Element:
        return el(
            tag,
            el("tt:Name", "PTZ"),
            el("tt:UseCount", sum(p.ptz for p in self.profiles.values())),
            el("tt:NodeToken", NODE_TOKEN),
            el("tt:DefaultAbsolutePantTiltPositionSpace", PAN_TILT_POSITION),
            el("tt:DefaultAbsoluteZoomPositionSpace", ZOOM_POSITION),
            el("tt:DefaultRelativePanTiltTranslationSpace", PAN_TILT_TRANSLATION),
            el("tt:DefaultRelativeZoomTranslationSpace", ZOOM_TRANSLATION),
            el("tt:DefaultContinuousPanTiltVelocitySpace", PAN_TILT_VELOCITY),
            el("tt:DefaultContinuousZoomVelocitySpace", ZOOM_VELOCITY),
            el(
                "tt:DefaultPTZSpeed",
                el("tt:PanTilt", x=1.0, y=1.0, space=PAN_TILT_SPEED),
                el("tt:Zoom", x=1.0, space=ZOOM_SPEED),
            ),
            el("tt:DefaultPTZTimeout", format_duration(self.default_timeout)),
            el(
                "tt:PanTiltLimits",
                el(
                    "tt:Range",
                    el("tt:URI", PAN_TILT_POSITION),
                    _range("tt:XRange", PAN_TILT_LIMITS),
                    _range("tt:YRange", PAN_TILT_LIMITS),
                ),
            ),
            el(
                "tt:ZoomLimits",
                el("tt:Range", el("tt:URI", ZOOM_POSITION), _range("tt:XRange", ZOOM_LIMITS)),
            ),
            token=PTZ_CONFIG_TOKEN,
        )

    def _tptz_GetServiceCapabilities(self, node: etree._Element) -> etree._Element:
        return el("tptz:GetServiceCapabilitiesResponse", self._service_capabilities("tptz"))

    def _tptz_GetNodes(self, node: etree._Element) -> etree._Element:
        return el("tptz:GetNodesResponse", self._node_xml())

    def _tptz_GetNode(self, node: etree._Element) -> etree._Element:
        if node.findtext("tptz:NodeToken", namespaces=NS) != NODE_TOKEN:
            raise SoapFault.sender("InvalidArgVal", "NoEntity", reason="no such PTZ node")
        return el("tptz:GetNodeResponse", self._node_xml())

    def _tptz_GetConfigurations(self, node: etree._Element) -> etree._Element:
        config = self._ptz_configuration("tptz:PTZConfiguration")
        return el("tptz:GetConfigurationsResponse", config)

    def _config_token(self, node: etree._Element, tag: str) -> None:
        if node.findtext(tag, namespaces=NS) != PTZ_CONFIG_TOKEN:
            raise SoapFault.sender("InvalidArgVal", "NoConfig", reason="no such PTZ configuration")

    def _tptz_GetConfiguration(self, node: etree._Element) -> etree._Element:
        self._config_token(node, "tptz:PTZConfigurationToken")
        config = self._ptz_configuration("tptz:PTZConfiguration")
        return el("tptz:GetConfigurationResponse", config)

    def _tptz_GetConfigurationOptions(self, node: etree._Element) -> etree._Element:
        self._config_token(node, "tptz:ConfigurationToken")
        spaces = self._spaces()
        spaces.tag = _q("tt:Spaces")
        low, high = PTZ_TIMEOUT_RANGE
        options = el(
            "tptz:PTZConfigurationOptions",
            spaces,
            el(
                "tt:PTZTimeout",
                el("tt:Min", format_duration(low)),
                el("tt:Max", format_duration(high)),
            ),
        )
        return el("tptz:GetConfigurationOptionsResponse", options)

    def _tptz_GetStatus(self, node: etree._Element) -> etree._Element:
        self._ptz_profile(node)
        self._advance()
        pan_tilt = "MOVING" if self._rate[0] or self._rate[1] else "IDLE"
        zoom = "MOVING" if self._rate[2] else "IDLE"
        status = el(
            "tptz:PTZStatus",
            self._vector("tt:Position", self._pos),
            el("tt:MoveStatus", el("tt:PanTilt", pan_tilt), el("tt:Zoom", zoom)),
            el("tt:UtcTime", self.device_now().strftime("%Y-%m-%dT%H:%M:%SZ")),
        )
        return el("tptz:GetStatusResponse", status)

    def _tptz_GetPresets(self, node: etree._Element) -> etree._Element:
        self._ptz_profile(node)
        presets = [
            el(
                "tptz:Preset",
                el("tt:Name", p.name),
                self._vector("tt:PTZPosition", p.position),
                token=t,
            )
            for t, p in self.presets.items()
        ]
        return el("tptz:GetPresetsResponse", presets)

    @staticmethod
    def _vector(tag: str, pos: Sequence[float]) -> etree._Element:
        return el(
            tag,
            el("tt:PanTilt", x=pos[0], y=pos[1], space=PAN_TILT_POSITION),
            el("tt:Zoom", x=pos[2], space=ZOOM_POSITION),
        )

    # ---- PTZ service: commands -------------------------------------------------------

    def _ptz_profile(self, node: etree._Element) -> Profile:
        profile = self._profile(node, "tptz")
        if not profile.ptz:
            raise SoapFault.sender(
                "InvalidArgVal", "NoPTZProfile", reason=f"{profile.token} has no PTZConfiguration"
            )
        return profile

    def _tptz_ContinuousMove(self, node: etree._Element) -> etree._Element:
        self._ptz_profile(node)
        pan_tilt, zoom = _vectors(node.find("tptz:Velocity", NS))
        pt_lo, pt_hi = self.pan_tilt_velocity
        if pan_tilt:
            _space(pan_tilt, PAN_TILT_VELOCITY)
            for value in pan_tilt[:2]:
                _check(value, self.pan_tilt_velocity, "InvalidVelocity", "pan/tilt velocity")
        if zoom:
            _space(zoom, ZOOM_VELOCITY)
            _check(zoom[0], self.zoom_velocity, "InvalidVelocity", "zoom velocity")
        timeout_text = node.findtext("tptz:Timeout", namespaces=NS)
        timeout = self.default_timeout
        if timeout_text is not None:
            parsed = parse_duration(timeout_text)
            if (
                not self.accepts_timeout  # cameras that fault on any Timeout exist
                or parsed is None
                or not PTZ_TIMEOUT_RANGE[0] <= parsed <= PTZ_TIMEOUT_RANGE[1]
            ):
                raise SoapFault.sender(
                    "InvalidArgVal", "TimeoutNotSupported", reason=f"Timeout {timeout_text}"
                )
            timeout = parsed
        pt_scale = self.speed / max(abs(pt_lo), abs(pt_hi))
        zoom_scale = self.speed / max(abs(v) for v in self.zoom_velocity)
        self._set_rates(
            pan_tilt=(pan_tilt[0] * pt_scale, pan_tilt[1] * pt_scale) if pan_tilt else None,
            zoom=zoom[0] * zoom_scale if zoom else None,
            until=time.monotonic() + timeout,
        )
        return el("tptz:ContinuousMoveResponse")

    def _tptz_Stop(self, node: etree._Element) -> etree._Element:
        self._ptz_profile(node)
        pan_tilt = node.findtext("tptz:PanTilt", namespaces=NS) in (None, "true", "1")
        zoom = node.findtext("tptz:Zoom", namespaces=NS) in (None, "true", "1")
        self._set_rates(pan_tilt=(0.0, 0.0) if pan_tilt else None, zoom=0.0 if zoom else None)
        return el("tptz:StopResponse")

    def _move_to(self, pan_tilt: tuple[float, float] | None, zoom: float | None) -> None:
        self._set_rates(
            pan_tilt=(0.0, 0.0) if pan_tilt else None, zoom=0.0 if zoom is not None else None
        )
        if pan_tilt:
            self._pos[0], self._pos[1] = (_clamp(v, PAN_TILT_LIMITS) for v in pan_tilt)
        if zoom is not None:
            self._pos[2] = _clamp(zoom, ZOOM_LIMITS)

    def _check_speed(self, node: etree._Element) -> None:
        pan_tilt, zoom = _vectors(node.find("tptz:Speed", NS))
        if pan_tilt:
            _space(pan_tilt, PAN_TILT_SPEED)
            for value in pan_tilt[:2]:
                _check(value, SPEED_RANGE, "InvalidSpeed", "pan/tilt speed")
        if zoom:
            _space(zoom, ZOOM_SPEED)
            _check(zoom[0], SPEED_RANGE, "InvalidSpeed", "zoom speed")

    def _tptz_AbsoluteMove(self, node: etree._Element) -> etree._Element:
        self._ptz_profile(node)
        self._check_speed(node)
        pan_tilt, zoom = _vectors(node.find("tptz:Position", NS))
        if pan_tilt:
            _space(pan_tilt, PAN_TILT_POSITION)
            for value in pan_tilt[:2]:
                _check(value, PAN_TILT_LIMITS, "InvalidPosition", "pan/tilt position")
        if zoom:
            _space(zoom, ZOOM_POSITION)
            _check(zoom[0], ZOOM_LIMITS, "InvalidPosition", "zoom position")
        self._move_to(pan_tilt[:2] if pan_tilt else None, zoom[0] if zoom else None)
        return el("tptz:AbsoluteMoveResponse")

    def _tptz_RelativeMove(self, node: etree._Element) -> etree._Element:
        self._ptz_profile(node)
        self._check_speed(node)
        pan_tilt, zoom = _vectors(node.find("tptz:Translation", NS))
        if pan_tilt:
            _space(pan_tilt, PAN_TILT_TRANSLATION)
            for value in pan_tilt[:2]:
                _check(value, UNIT, "InvalidTranslation", "pan/tilt translation")
        if zoom:
            _space(zoom, ZOOM_TRANSLATION)
            _check(zoom[0], UNIT, "InvalidTranslation", "zoom translation")
        pan, tilt, current_zoom = self.position
        self._move_to(
            (pan + pan_tilt[0], tilt + pan_tilt[1]) if pan_tilt else None,
            current_zoom + zoom[0] if zoom else None,
        )
        return el("tptz:RelativeMoveResponse")

    def _preset_token(self, node: etree._Element) -> str:
        token = node.findtext("tptz:PresetToken", namespaces=NS) or ""
        if token not in self.presets:
            raise SoapFault.sender("InvalidArgVal", "NoToken", reason=f"no preset {token!r}")
        return token

    def _tptz_GotoPreset(self, node: etree._Element) -> etree._Element:
        self._ptz_profile(node)
        self._check_speed(node)
        pan, tilt, zoom = self.presets[self._preset_token(node)].position
        self._move_to((pan, tilt), zoom)
        return el("tptz:GotoPresetResponse")

    def _tptz_SetPreset(self, node: etree._Element) -> etree._Element:
        self._ptz_profile(node)
        name = node.findtext("tptz:PresetName", namespaces=NS)
        token = node.find("tptz:PresetToken", NS)
        if self.moving:
            raise SoapFault.receiver(
                "Action", "MovingPTZ", reason="cannot set a preset while moving"
            )
        if token is not None:
            token_text = self._preset_token(node)
        elif len(self.presets) >= self.max_presets:
            raise SoapFault.receiver("Action", "TooManyPresets", reason="no free preset slot")
        else:
            self._preset_counter += 1
            token_text = f"Preset_{self._preset_counter}"
        name = (
            name
            if name is not None
            else (self.presets[token_text].name if token_text in self.presets else token_text)
        )
        if not name.strip() or len(name) > 64:
            raise SoapFault.sender("InvalidArgVal", "InvalidPresetName", reason=f"name {name!r}")
        if any(p.name == name and t != token_text for t, p in self.presets.items()):
            raise SoapFault.sender("InvalidArgVal", "PresetExist", reason=f"{name!r} exists")
        self.presets[token_text] = Preset(name, self.position)
        return el("tptz:SetPresetResponse", el("tptz:PresetToken", token_text))

    def _tptz_RemovePreset(self, node: etree._Element) -> etree._Element:
        self._ptz_profile(node)
        del self.presets[self._preset_token(node)]
        return el("tptz:RemovePresetResponse")

    def _tptz_GotoHomePosition(self, node: etree._Element) -> etree._Element:
        self._ptz_profile(node)
        self._check_speed(node)
        if not self.home_supported:
            raise SoapFault.receiver("Action", "NoHomePosition", reason="no home position")
        self._move_to(self.home[:2], self.home[2])
        return el("tptz:GotoHomePositionResponse")

    def _tptz_SetHomePosition(self, node: etree._Element) -> etree._Element:
        self._ptz_profile(node)
        if not self.home_supported:
            raise SoapFault.receiver("Action", "NoHomePosition", reason="no home position")
        self.home = self.position
        return el("tptz:SetHomePositionResponse")

    # ---- motion ----------------------------------------------------------------------

    def _advance(self) -> None:
        now = time.monotonic()
        end = now if self._until is None else min(now, self._until)
        elapsed = max(0.0, end - self._since)
        limits = (PAN_TILT_LIMITS, PAN_TILT_LIMITS, ZOOM_LIMITS)
        for axis, limit in enumerate(limits):
            self._pos[axis] = _clamp(self._pos[axis] + self._rate[axis] * elapsed, limit)
        self._since = now
        if self._until is not None and now >= self._until:
            self._rate, self._until = [0.0, 0.0, 0.0], None

    def _set_rates(
        self,
        pan_tilt: tuple[float, float] | None,
        zoom: float | None,
        until: float | None = None,
    ) -> None:
        """Change the given axes' rates (None: unchanged); `until` sets a new deadline."""
        self._advance()
        if pan_tilt is not None:
            self._rate[0], self._rate[1] = pan_tilt
        if zoom is not None:
            self._rate[2] = zoom
        if until is not None:
            self._until = until
        if not any(self._rate):
            self._until = None


def _range(tag: str, bounds: tuple[float, float]) -> etree._Element:
    return el(tag, el("tt:Min", float(bounds[0])), el("tt:Max", float(bounds[1])))


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def _check(value: float, bounds: tuple[float, float], subcode: str, what: str) -> None:
    if math.isnan(value) or not bounds[0] - 1e-6 <= value <= bounds[1] + 1e-6:
        raise SoapFault.sender("InvalidArgVal", subcode, reason=f"{what} {value} outside {bounds}")


def _vectors(node: etree._Element | None) -> tuple[tuple[Any, ...] | None, tuple[Any, ...] | None]:
    """(x, y, space) of tt:PanTilt and (x, space) of tt:Zoom under `node`, or None."""
    if node is None:
        return None, None
    pan_tilt, zoom = node.find("tt:PanTilt", NS), node.find("tt:Zoom", NS)
    return (
        (float(pan_tilt.get("x")), float(pan_tilt.get("y")), pan_tilt.get("space"))
        if pan_tilt is not None
        else None,
        (float(zoom.get("x")), zoom.get("space")) if zoom is not None else None,
    )


def _space(vector: tuple[Any, ...], uri: str) -> None:
    if vector[-1] is not None and vector[-1] != uri:
        raise SoapFault.sender("InvalidArgVal", "SpaceNotSupported", reason=f"space {vector[-1]}")


__all__ = [
    "DEFAULT_PROFILES",
    "FaultRecord",
    "OnvifTestDevice",
    "Preset",
    "Profile",
    "Request",
    "SoapFault",
    "wsdl_dir",
]

"""camgate configuration: YAML in, typed and validated Structs out.

Each field is declared once, below: its YAML key, type, bounds and default (msgspec checks
them). What a type cannot say (even sizes, a password that needs a user name) is checked in
the section's __post_init__. Every error names the key path (e.g. `cameras[1].transport`),
what is wrong and the line in the file, so a user can fix it without reading code (see
gateway/config_check.py). A camera's kinds, and the blocks they add to it, come from the
registry of gateway/sources/. Nothing here touches the network.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import msgspec
import yaml
from msgspec import Meta, field

from gateway.config_check import convert
from gateway.config_model import (
    DROP,
    ConfigError,
    Section,
    default_in_words,
    invalid,
    set_field,
    shorthand,
)
from gateway.config_yaml import MAX_CONFIG_BYTES, load_yaml
from gateway.media.limits import MB, StreamLimits
from gateway.node_identity import NODE_ID, default_node_id
from gateway.onvif.settings import OnvifConfig
from gateway.quotas import ConnectionLimits, SessionQuota
from gateway.rtsp.url import parse_url
from gateway.sources import registry
from gateway.sources.demo import DemoSettings
from gateway.sources.picamera import PicameraSettings

__all__ = [
    "MAX_CONFIG_BYTES",
    "AuthConfig",
    "CameraConfig",
    "CandidateFilter",
    "ClientLimits",
    "Config",
    "ConfigError",
    "DemoSettings",
    "IceServer",
    "MqttConfig",
    "MqttTls",
    "OnvifConfig",
    "PicameraSettings",
    "PtzSettings",
    "TlsConfig",
    "WebRtcConfig",
    "demo_config",
    "load_config",
    "parse_config",
    "parse_listen",
    "pi_camera_config",
]

DEFAULT_LISTEN = ("0.0.0.0", 8080)
CAMERA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

Port = Annotated[int, Meta(ge=1, le=65535)]
Text = Annotated[str, Meta(min_length=1)]


def _between(low: float, high: float) -> Meta:
    return Meta(ge=low, le=high)


def _default_of(owner: type, name: str, unit: int = 1) -> Meta:
    """The default of a field that another module declares (unset here: its default)."""
    return default_in_words(f"`{getattr(owner(), name) / unit:g}`")


# --- webrtc -------------------------------------------------------------------------------


def _ice_server_text(value: Any) -> Any:
    return {"urls": value} if isinstance(value, str) else value  # `- stun:host:3478`


class IceServer(Section, frozen=True):
    urls: Annotated[tuple[Text, ...], Meta(min_length=1)]
    username: str | None = None
    credential: str | None = None

    def __post_init__(self) -> None:
        for url in self.urls:
            if not url.lower().startswith(("stun:", "turn:", "turns:")):
                raise invalid("urls", f"{url!r} must start with stun:, turn: or turns:")
        if any(u.lower().startswith("turn") for u in self.urls) and not (
            self.username and self.credential
        ):
            raise ValueError("a TURN server needs username and credential")


class CandidateFilter(Section, frozen=True):
    """Which local addresses the gateway offers as ICE host candidates."""

    interfaces: tuple[Text, ...] = ()
    addresses: tuple[Text, ...] = ()
    ipv6: bool = True

    def __post_init__(self) -> None:
        for i, address in enumerate(self.addresses):
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise invalid(f"addresses[{i}]", f"{address!r} is not an IP address") from None

    @property
    def restricted(self) -> bool:
        return bool(self.interfaces or self.addresses) or not self.ipv6


def _send_workers(value: Any) -> Any:
    if value == "auto":  # every core but the one the gateway's own process needs
        return max((os.cpu_count() or 1) - 1, 0)
    return value


class WebRtcConfig(Section, frozen=True):
    ice_servers: tuple[Annotated[IceServer, shorthand(_ice_server_text)], ...] = ()
    candidates: CandidateFilter = field(default_factory=CandidateFilter)
    # Processes that send viewers' RTP (gateway/fanout/): 0 sends from the gateway's own
    # process, which is right up to ~200 viewers on one core of a fast machine.
    send_workers: Annotated[int, _between(0, 64), shorthand(_send_workers)] = 0


# --- cameras ------------------------------------------------------------------------------


class CameraBase(Section, frozen=True, kw_only=True):
    """What every camera has. CameraConfig adds one block per camera kind that has
    settings (`demo`, `picamera`, `onvif`, ...), from the registry."""

    __secrets__: ClassVar[frozenset[str]] = frozenset({"source", "substream"})

    name: Text
    # "demo", "picamera" or an rtsp(s):// URL, possibly with credentials: kept out of repr
    # and logs. None when a block alone says what the camera is (`onvif: {...}`).
    source: str | None = None
    # The camera's second, smaller stream (an rtsp:// URL, RTSP cameras only): grid tiles
    # get it, full view the main one (docs/streams.md). A secret like `source`.
    substream: str | None = None
    transport: Literal["tcp", "udp"] = "tcp"
    preload: bool = False
    linger_s: Annotated[float, _between(0, 3600)] = field(default=10.0, name="linger")
    # The camera's sound to viewers: "auto" passes on whatever it offers (AAC as Opus),
    # "off" ignores it. Talking back through its ONVIF audio backchannel: "auto" where
    # the camera has one (admins only), "off" never.
    audio: Literal["auto", "off"] = "auto"
    backchannel: Literal["auto", "off"] = "auto"

    def __post_init__(self) -> None:
        if not CAMERA_NAME.match(self.name):
            raise invalid(
                "name",
                f"{self.name!r} must be 1-64 letters, digits, '-' or '_' "
                "(it becomes part of URLs and MQTT topics)",
            )
        if self.source is not None:
            set_field(self, "source", self.source.strip())
        kind = registry.kind_for(self.source, self._blocks())
        if self.substream is not None:
            self._check_substream(kind.name)
        if kind.settings is not None and getattr(self, kind.name, None) is None:
            set_field(self, kind.name, kind.settings())  # its block's defaults

    def _check_substream(self, kind: str) -> None:
        assert self.substream is not None
        if kind != "rtsp":
            raise invalid(
                "substream",
                "only for cameras with an rtsp:// `source` (ONVIF cameras find theirs: "
                "`onvif: {substream: auto}`)",
            )
        substream = self.substream.strip()
        try:
            parse_url(substream)  # its ValueError never repeats the URL (credentials)
        except ValueError as exc:
            raise invalid("substream", str(exc)) from None
        set_field(self, "substream", substream)

    @property
    def kind(self) -> str:
        """The camera kind's name (gateway/sources/registry.py)."""
        return registry.kind_for(self.source, self._blocks()).name

    @property
    def onvif_settings(self) -> OnvifConfig | None:
        """The camera's ONVIF endpoint (its stream, or PTZ only), if it has one."""
        onvif = getattr(self, "onvif", None)
        return onvif if isinstance(onvif, OnvifConfig) else None

    def _blocks(self) -> set[str]:
        return {k.name for k in _KINDS_WITH_BLOCKS if getattr(self, k.name, None) is not None}


_KINDS_WITH_BLOCKS = tuple(k for k in registry.kinds() if k.settings is not None)

if TYPE_CHECKING:
    CameraConfig = CameraBase
else:
    # Every kind with settings adds its block, e.g. `demo: {width: 640}`; None when absent,
    # and its defaults for a camera of that kind (CameraBase.__post_init__).
    CameraConfig = msgspec.defstruct(
        "CameraConfig",
        [(k.name, k.settings | None, None) for k in _KINDS_WITH_BLOCKS],
        bases=(CameraBase,),
        module=__name__,
        frozen=True,
        kw_only=True,
    )


# --- safety limits --------------------------------------------------------------------------


class ClientLimits(Section, frozen=True):
    """What one client, and everyone, may make camgate hold (SECURITY.md). Unset: the
    defaults of SessionQuota and ConnectionLimits."""

    viewers_per_client: Annotated[
        Annotated[int, _between(1, 10_000)] | None, _default_of(SessionQuota, "sessions_per_client")
    ] = None
    viewers_total: Annotated[
        Annotated[int, _between(1, 10_000)] | None, _default_of(SessionQuota, "sessions_total")
    ] = None
    connecting_per_client: Annotated[
        Annotated[int, _between(1, 10_000)] | None, _default_of(SessionQuota, "pending_per_client")
    ] = None
    connecting_total: Annotated[
        Annotated[int, _between(1, 10_000)] | None, _default_of(SessionQuota, "pending_total")
    ] = None
    http_connections: Annotated[
        Annotated[int, _between(8, 100_000)] | None,
        _default_of(ConnectionLimits, "max_connections"),
    ] = None
    http_connections_per_address: Annotated[
        Annotated[int, _between(4, 100_000)] | None,
        _default_of(ConnectionLimits, "max_per_address"),
    ] = None
    http_idle_timeout: Annotated[
        Annotated[float, _between(1, 3600)] | None, _default_of(ConnectionLimits, "idle_timeout_s")
    ] = None

    @property
    def sessions(self) -> SessionQuota:
        return SessionQuota(
            **_given(
                sessions_per_client=self.viewers_per_client,
                sessions_total=self.viewers_total,
                pending_per_client=self.connecting_per_client,
                pending_total=self.connecting_total,
            )
        )

    @property
    def http(self) -> ConnectionLimits:
        return ConnectionLimits(
            **_given(
                max_connections=self.http_connections,
                max_per_address=self.http_connections_per_address,
                idle_timeout_s=self.http_idle_timeout,
            )
        )


class StreamLimitsMb(Section, frozen=True):
    """Caps against a hostile camera (gateway/media/limits.py), given in megabytes.
    Unset: StreamLimits' defaults."""

    picture_mb: Annotated[
        Annotated[float, _between(0.1, 1024)] | None, _default_of(StreamLimits, "picture_bytes", MB)
    ] = None
    gop_mb: Annotated[
        Annotated[float, _between(0.1, 1024)] | None, _default_of(StreamLimits, "gop_bytes", MB)
    ] = None
    viewer_queue_mb: Annotated[
        Annotated[float, _between(0.1, 1024)] | None,
        _default_of(StreamLimits, "viewer_queue_bytes", MB),
    ] = None

    @property
    def stream_limits(self) -> StreamLimits:
        return StreamLimits(
            **_given(
                picture_bytes=_bytes(self.picture_mb),
                gop_bytes=_bytes(self.gop_mb),
                viewer_queue_bytes=_bytes(self.viewer_queue_mb),
            )
        )


def _bytes(megabytes: float | None) -> int | None:
    return None if megabytes is None else int(megabytes * MB)


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class PtzSettings(Section, frozen=True):
    """Safety limits for continuous moves, for every camera."""

    # A held move (viewer pad) stops without a refresh this often.
    deadman_s: Annotated[float, _between(0.2, 10)] = field(default=1.0, name="deadman")
    # No continuous move runs longer, whoever started it.
    max_move_s: Annotated[float, _between(1, 600)] = field(default=30.0, name="max_move")


# --- mqtt ---------------------------------------------------------------------------------


def _readable(**paths: str | None) -> None:
    for key, path in paths.items():
        if path is not None and not Path(path).is_file():
            raise invalid(key, f"{path!r} is not a readable file")


class MqttTls(Section, frozen=True):
    """TLS to the broker. No files: the system's CA store verifies the broker."""

    ca: str | None = None  # CA bundle that signed the broker's certificate
    cert: str | None = None  # client certificate (brokers that authenticate by certificate)
    key: str | None = None
    insecure: bool = False  # skip hostname verification (self-signed test brokers)

    def __post_init__(self) -> None:
        _readable(ca=self.ca, cert=self.cert, key=self.key)
        if self.key and not self.cert:
            raise invalid("key", "needs `cert` too")


def _mqtt_tls_switch(value: Any) -> Any:
    """`tls: true` (system CAs), `tls: false`, or a mapping of files."""
    if isinstance(value, bool):
        return {} if value else None
    return value


def _topic(value: str) -> str | None:
    """Why `value` is not a usable MQTT topic prefix, or None."""
    if not value.strip("/"):
        return "must be a non-empty topic such as 'camgate'"
    if any(c in value for c in "+#\0") or value.startswith("$"):
        return f"{value!r} must not contain +, #, NUL or start with $"
    if value != value.strip("/") or "//" in value or len(value) > 128:
        return (
            f"{value!r} must not start or end with '/', contain '//', "
            "or be longer than 128 characters"
        )
    return None


LEGACY_TOPIC_PREFIX = "camgate"


class MqttConfig(Section, frozen=True):
    __secrets__: ClassVar[frozenset[str]] = frozenset({"password"})

    host: Text
    port: Annotated[Port, default_in_words("`1883`; `8883` with `tls`")] = 0
    username: str | None = None
    password: str | None = None
    tls: Annotated[MqttTls | None, shorthand(_mqtt_tls_switch)] = None
    # This gateway's id on the broker and in Home Assistant. None: unique per machine
    # (brokers disconnect the older of two clients with one id, and two gateways must not
    # share availability, topics or Home Assistant ids).
    node_id: Annotated[str, default_in_words("`camgate-` and a hash of the machine id")] = ""
    client_id: Annotated[str, default_in_words("the node id")] = ""
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    keepalive_s: Annotated[int, _between(5, 3600)] = field(default=60, name="keepalive")
    # "": a level of its own per gateway, `camgate/<node id>`. Chosen (`frigate`, or
    # `camgate` to keep the topics of versions before node ids): that prefix.
    topic_prefix: Annotated[Text, default_in_words("`camgate/<node id>`")] = ""
    discovery: bool = True
    discovery_prefix: Text = "homeassistant"
    # 0: snapshots only on request.
    snapshot_interval_s: Annotated[float, _between(0, 86400)] = field(
        default=0.0, name="snapshot_interval"
    )
    move_speed: Annotated[float, _between(0.01, 1)] = 0.5  # MOVE_*/ZOOM_*, of the maximum
    # A MOVE_* without STOP ends after this.
    move_timeout_s: Annotated[float, _between(0.1, 60)] = field(default=10.0, name="move_timeout")

    def __post_init__(self) -> None:
        if "://" in self.host or "/" in self.host:
            raise invalid("host", "must be a host name or IP address, not a URL")
        set_field(self, "host", self.host.strip().removeprefix("[").removesuffix("]"))
        if self.password is not None and not self.username:
            raise invalid("password", "needs `username` too")
        if not self.username:
            set_field(self, "username", None)
            set_field(self, "password", None)
        if not self.port:
            set_field(self, "port", 8883 if self.tls is not None else 1883)
        node_id = self.node_id or default_node_id()
        if not NODE_ID.match(node_id):
            raise invalid("node_id", "must be 1-64 letters, digits, '-' or '_'")
        set_field(self, "node_id", node_id)
        client_id = self.client_id or node_id
        if not 1 <= len(client_id) <= 64 or not client_id.isprintable():
            raise invalid("client_id", "must be 1-64 printable characters")
        set_field(self, "client_id", client_id)
        for key in ("topic_prefix", "discovery_prefix"):
            value = getattr(self, key)
            why = _topic(value) if value else None
            if why:
                raise invalid(key, why)
        if not self.topic_prefix:
            set_field(self, "topic_prefix", f"{LEGACY_TOPIC_PREFIX}/{node_id}")

    @property
    def legacy_prefix(self) -> str:
        """The topic prefix camgate used before node ids with this config: what it
        published there for its cameras is cleared (docs/mqtt.md "Upgrading")."""
        default = f"{LEGACY_TOPIC_PREFIX}/{self.node_id}"
        return LEGACY_TOPIC_PREFIX if self.topic_prefix == default else self.topic_prefix


# --- access -------------------------------------------------------------------------------


def _auth_switch(value: Any) -> Any:
    return {"enabled": False} if value is False else value  # `auth: false`


class AuthConfig(Section, frozen=True):
    """Who may watch and steer (README "Security")."""

    __secrets__: ClassVar[frozenset[str]] = frozenset({"admin_password", "viewer_password"})

    enabled: bool = True
    # Set (or reset) the accounts' passwords at start; otherwise the admin password is
    # chosen on the first visit and kept (hashed) in the state directory.
    admin_password: str | None = None
    viewer_password: str | None = None
    session_days: Annotated[float, _between(0.01, 365)] = 30.0
    # Host names the gateway answers to besides IP literals, localhost, its host name and
    # <hostname>.local (the DNS-rebinding guard, SECURITY.md); "*": any name.
    allowed_hosts: tuple[Text, ...] = ()

    def __post_init__(self) -> None:
        for key in ("admin_password", "viewer_password"):
            password = getattr(self, key)
            if password is not None and len(password) < 8:
                raise invalid(key, "must have at least 8 characters")


def _tls_switch(value: Any) -> Any:
    """`tls: self-signed` (or true), `tls: {cert, key}`, or nothing (plain HTTP)."""
    if value is None or value is False:
        return None
    if value == "self-signed" or value is True:
        return {}
    return value


class TlsConfig(Section, frozen=True):
    """HTTPS for the viewer and API: a certificate and key, or one made and kept by camgate."""

    cert: str | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise invalid("key" if self.key is None else "cert", "missing (give cert and key)")
        _readable(cert=self.cert, key=self.key)

    @property
    def self_signed(self) -> bool:
        return self.cert is None


# --- the file -----------------------------------------------------------------------------


def default_state_dir() -> Path:
    """systemd's StateDirectory=, else the XDG state directory of the user."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "camgate"


def _listen_text(value: Any) -> Any:
    try:
        return list(_listen_pair(value))
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def _state_dir_text(value: Any) -> Any:
    return DROP if value is None else value


class Config(Section, frozen=True, kw_only=True):
    cameras: Annotated[tuple[CameraConfig, ...], Meta(min_length=1)]
    listen: Annotated[tuple[str, int], shorthand(_listen_text)] = DEFAULT_LISTEN
    webrtc: WebRtcConfig = field(default_factory=WebRtcConfig)
    ptz: PtzSettings = field(default_factory=PtzSettings)
    mqtt: MqttConfig | None = None
    auth: Annotated[AuthConfig, shorthand(_auth_switch)] = field(default_factory=AuthConfig)
    tls: Annotated[TlsConfig | None, shorthand(_tls_switch)] = None
    client_limits: ClientLimits = field(default_factory=ClientLimits)
    state_dir: Annotated[
        Path,
        shorthand(_state_dir_text),
        default_in_words("`$STATE_DIRECTORY`, else `~/.local/state/camgate`"),
    ] = field(default_factory=default_state_dir)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    stream_limits: StreamLimitsMb = field(default_factory=StreamLimitsMb, name="limits")

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for i, camera in enumerate(self.cameras):
            if camera.name.lower() in seen:
                raise invalid(f"cameras[{i}].name", f"duplicate camera name {camera.name!r}")
            seen.add(camera.name.lower())

    @property
    def limits(self) -> StreamLimits:
        return self.stream_limits.stream_limits


def demo_config() -> Config:
    """One demo camera: what `camgate` runs with no config file, where no Pi camera is."""
    return Config(cameras=(CameraConfig(name="demo", source="demo", preload=True),))


def pi_camera_config() -> Config:
    """What `camgate` runs with no config file on a Pi with a camera module."""
    return Config(cameras=(CameraConfig(name="picamera", source="picamera"),))


def load_config(path: str | Path) -> Config:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    return parse_config(text, origin=str(path))


def parse_config(text: str, origin: str = "config") -> Config:
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{origin}: larger than {MAX_CONFIG_BYTES // 1024} KB")
    try:
        data, lines = load_yaml(text)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{origin}: {problem}{where}") from None
    if data is None:
        data = {}
    if isinstance(data, dict) and "cameras" not in data:
        raise ConfigError("cameras: missing (list at least one camera)")
    return convert(data, Config, lines)


def parse_listen(value: Any, key: str = "listen") -> tuple[str, int]:
    """`HOST:PORT`, `:PORT`, `PORT` or `[v6]:PORT`."""
    try:
        return _listen_pair(value)
    except ConfigError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _listen_pair(value: Any) -> tuple[str, int]:
    text = str(value).strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip("[]") or DEFAULT_LISTEN[0]
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{text!r} must be HOST:PORT with a port from 1 to 65535")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"{host!r} is not an IP address") from None
    return host, int(port_text)

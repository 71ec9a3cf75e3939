"""camgate configuration: YAML in, typed and validated dataclasses out.

Every error names the key path (e.g. `cameras[1].transport`) and what is wrong, so a user
can fix the file without reading code. Nothing here touches the network.
"""

from __future__ import annotations

import ipaddress
import os
import re
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from gateway.http.limits import ConnectionLimits
from gateway.media.limits import MB, StreamLimits
from gateway.mqtt.identity import NODE_ID, default_node_id
from gateway.rtsp.url import parse_url
from gateway.webrtc.limits import SessionQuota

DEFAULT_LISTEN = ("0.0.0.0", 8080)
CAMERA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
DEMO_SOURCE = "demo"
PICAMERA_SOURCE = "picamera"


class ConfigError(ValueError):
    """A config problem, phrased for the user: `<key path>: <what is wrong>`."""


# --- YAML, read defensively --------------------------------------------------------------
# A config file may come from anywhere (a forum post, a backup): reading it must cost
# bounded time and memory. Nesting is recursion in the YAML composer (RecursionError past
# ~1000 levels), and anchors/aliases can expand 350 bytes into billions of nodes ("billion
# laughs"), which any later walk over the data (or repr() in an error) then pays for.
MAX_CONFIG_BYTES = 1024 * 1024
MAX_YAML_DEPTH = 32
MAX_YAML_EXPANDED = 1_000_000  # nodes and scalar characters, counting every alias in full


class _BoundedYamlLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting and aliases that expand too far."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._expanded: dict[int, int] = {}  # id(node) -> its size with aliases expanded

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            alias = super().compose_node(parent, index)
            if alias is None or id(alias) not in self._expanded:  # an ancestor, unfinished
                raise self._refuse("an alias refers to a node that contains it")
            return alias
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise self._refuse(f"nested deeper than {MAX_YAML_DEPTH} levels")
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        assert node is not None  # only an empty stream composes to None, not a node
        self._expanded[id(node)] = self._size(node)
        return node

    def _size(self, node: yaml.Node) -> int:
        if isinstance(node, yaml.ScalarNode):
            return 1 + len(node.value)
        size = 1 + sum(self._expanded[id(child)] for child in _children(node))
        if size > MAX_YAML_EXPANDED:
            raise self._refuse(
                f"anchors and aliases expand to more than {MAX_YAML_EXPANDED:,} nodes and "
                "characters (a 'billion laughs' file?)"
            )
        return size

    def _refuse(self, why: str) -> ConfigError:
        mark = self.peek_event().start_mark if self.check_event() else None
        return ConfigError(f"{why}" + (f" (line {mark.line + 1})" if mark else ""))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value)


def _load_yaml(text: str) -> Any:
    loader = _BoundedYamlLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


_short = reprlib.Repr()
_short.maxstring = _short.maxother = 40
_short.maxlevel = 2


def _shown(value: Any) -> str:
    """A value for an error message: repr() shortened, whatever its size or depth."""
    return _short.repr(value)


@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True)
class CandidateFilter:
    """Which local addresses the gateway offers as ICE host candidates."""

    interfaces: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    ipv6: bool = True

    @property
    def restricted(self) -> bool:
        return bool(self.interfaces or self.addresses) or not self.ipv6


@dataclass(frozen=True)
class WebRtcConfig:
    ice_servers: tuple[IceServer, ...] = ()
    candidates: CandidateFilter = field(default_factory=CandidateFilter)
    # Processes that send viewers' RTP (gateway/fanout/): 0 sends from the gateway's own
    # process, which is right up to ~200 viewers on one core of a fast machine.
    send_workers: int = 0


@dataclass(frozen=True)
class DemoSettings:
    width: int = 1280
    height: int = 720
    fps: int = 30
    bitrate_kbps: int = 2000
    gop_seconds: float = 2.0


@dataclass(frozen=True)
class PicameraSettings:
    """The Pi's own camera (picamera2, hardware H.264 on Pi 3/4/Zero 2 W)."""

    camera: int = 0  # index among the Pi's cameras
    width: int = 1280
    height: int = 720
    framerate: int = 30
    bitrate: int = 3_000_000  # bits per second
    iperiod: int | None = None  # frames between keyframes; None: 2 s worth
    profile: Literal["baseline", "main", "high"] = "main"
    hflip: bool = False
    vflip: bool = False
    rotation: Literal[0, 180] = 0

    @property
    def keyframe_interval(self) -> int:
        return self.iperiod if self.iperiod is not None else 2 * self.framerate


@dataclass(frozen=True)
class OnvifConfig:
    """An ONVIF camera's control endpoint: streams (when the camera has no `source`) and PTZ."""

    host: str  # name or IP address (IPv6 without brackets)
    port: int = 80
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in repr, logs or errors
    profile: str | None = None  # media profile name or token; None: the first H.264 one
    timeout_s: float = 5.0  # per ONVIF request

    @property
    def address(self) -> str:
        """`host:port` as it goes in a URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class CameraConfig:
    name: str
    # "demo" or an rtsp(s):// URL, possibly with credentials: kept out of repr and logs.
    # None when the stream comes from ONVIF (`onvif` resolves the RTSP URL).
    source: str | None = field(default=None, repr=False)
    transport: Literal["tcp", "udp"] = "tcp"
    preload: bool = False
    linger_s: float = 10.0
    demo: DemoSettings = field(default_factory=DemoSettings)
    # With `source`: ONVIF for PTZ only. Without: ONVIF for the stream and PTZ.
    onvif: OnvifConfig | None = None
    picamera: PicameraSettings = field(default_factory=PicameraSettings)

    @property
    def is_demo(self) -> bool:
        return self.source == DEMO_SOURCE

    @property
    def is_picamera(self) -> bool:
        return self.source == PICAMERA_SOURCE

    @property
    def streams_via_onvif(self) -> bool:
        return self.source is None and self.onvif is not None


@dataclass(frozen=True)
class ClientLimits:
    """What one client, and everyone, may make camgate hold (SECURITY.md)."""

    sessions: SessionQuota = field(default_factory=SessionQuota)
    http: ConnectionLimits = field(default_factory=ConnectionLimits)


@dataclass(frozen=True)
class PtzSettings:
    """Safety limits for continuous moves, for every camera."""

    deadman_s: float = 1.0  # a held move (viewer pad) stops without a refresh this often
    max_move_s: float = 30.0  # no continuous move runs longer, whoever started it


@dataclass(frozen=True)
class MqttTls:
    """TLS to the broker. No files: the system's CA store verifies the broker."""

    ca: str | None = None  # CA bundle that signed the broker's certificate
    cert: str | None = None  # client certificate (brokers that authenticate by certificate)
    key: str | None = None
    insecure: bool = False  # skip hostname verification (self-signed test brokers)


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in repr, logs or errors
    tls: MqttTls | None = None
    client_id: str = "camgate"
    node_id: str = "camgate"  # this gateway's id on the broker and in Home Assistant
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    keepalive_s: int = 60
    topic_prefix: str = "camgate"
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    snapshot_interval_s: float = 0.0  # 0: snapshots only on request
    move_speed: float = 0.5  # MOVE_* / ZOOM_* speed, a fraction of the camera's maximum
    move_timeout_s: float = 10.0  # a MOVE_* without STOP ends after this
    # The topic prefix camgate used before node ids with this config: what it published
    # there for its cameras is cleared (docs/mqtt.md "Upgrading"). None: nothing to clear.
    legacy_prefix: str | None = None


@dataclass(frozen=True)
class AuthConfig:
    """Who may watch and steer (README "Security")."""

    enabled: bool = True
    # Set (or reset) the accounts' passwords at start; otherwise the admin password is
    # chosen on the first visit and kept (hashed) in the state directory.
    admin_password: str | None = field(default=None, repr=False)
    viewer_password: str | None = field(default=None, repr=False)
    session_days: float = 30.0
    # Host names the gateway answers to besides IP literals, localhost, its host name and
    # <hostname>.local (the DNS-rebinding guard, SECURITY.md); "*": any name.
    allowed_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class TlsConfig:
    """HTTPS for the viewer and API: a certificate and key, or one made and kept by camgate."""

    cert: str | None = None
    key: str | None = None

    @property
    def self_signed(self) -> bool:
        return self.cert is None


@dataclass(frozen=True)
class Config:
    cameras: tuple[CameraConfig, ...]
    listen: tuple[str, int] = DEFAULT_LISTEN
    webrtc: WebRtcConfig = field(default_factory=WebRtcConfig)
    ptz: PtzSettings = field(default_factory=PtzSettings)
    mqtt: MqttConfig | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)
    tls: TlsConfig | None = None
    client_limits: ClientLimits = field(default_factory=ClientLimits)
    state_dir: Path = field(default_factory=lambda: default_state_dir())
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"
    limits: StreamLimits = field(default_factory=StreamLimits)


def default_state_dir() -> Path:
    """systemd's StateDirectory=, else the XDG state directory of the user."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "camgate"


def demo_config() -> Config:
    """One demo camera: what `camgate` runs with no config file, where no Pi camera is."""
    return Config(cameras=(CameraConfig(name="demo", source=DEMO_SOURCE, preload=True),))


def pi_camera_config() -> Config:
    """What `camgate` runs with no config file on a Pi with a camera module."""
    return Config(cameras=(CameraConfig(name="picamera", source=PICAMERA_SOURCE),))


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
        data = _load_yaml(text)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{origin}: {problem}{where}") from None
    if data is None:
        data = {}
    return _config(_mapping(data, ""))


# --- sections -------------------------------------------------------------------------


def _config(data: dict[str, Any]) -> Config:
    _reject_unknown(
        data,
        "",
        {
            "cameras",
            "listen",
            "webrtc",
            "ptz",
            "mqtt",
            "auth",
            "tls",
            "client_limits",
            "state_dir",
            "log_level",
            "log_format",
            "limits",
        },
    )
    cameras_raw = data.get("cameras")
    if cameras_raw is None:
        raise ConfigError("cameras: missing (list at least one camera)")
    if not isinstance(cameras_raw, list) or not cameras_raw:
        raise ConfigError("cameras: must be a non-empty list")
    cameras = tuple(
        _camera(_mapping(c, f"cameras[{i}]"), f"cameras[{i}]") for i, c in enumerate(cameras_raw)
    )
    seen: set[str] = set()
    for i, cam in enumerate(cameras):
        if cam.name.lower() in seen:
            raise ConfigError(f"cameras[{i}].name: duplicate camera name {cam.name!r}")
        seen.add(cam.name.lower())
    listen = parse_listen(data["listen"], "listen") if "listen" in data else DEFAULT_LISTEN
    log_level = _choice(
        data.get("log_level", "info"), "log_level", ("debug", "info", "warning", "error")
    )
    webrtc = _webrtc(_mapping(data.get("webrtc", {}), "webrtc"))
    ptz = _ptz(_mapping(data.get("ptz", {}), "ptz"))
    mqtt = _mqtt(_mapping(data["mqtt"], "mqtt")) if data.get("mqtt") is not None else None
    log_format = _choice(data.get("log_format", "text"), "log_format", ("text", "json"))
    state_dir = _optional_str(data, "state_dir", "config")
    return Config(
        cameras=cameras,
        listen=listen,
        webrtc=webrtc,
        ptz=ptz,
        mqtt=mqtt,
        auth=_auth(data.get("auth", {})),
        tls=_tls(data.get("tls")),
        client_limits=_client_limits(_mapping(data.get("client_limits", {}), "client_limits")),
        state_dir=Path(state_dir).expanduser() if state_dir else default_state_dir(),
        log_level=log_level,
        log_format=log_format,  # type: ignore[arg-type]
        limits=_limits(_mapping(data.get("limits", {}), "limits")),
    )


def _limits(data: dict[str, Any]) -> StreamLimits:
    """Caps against a hostile camera (gateway/media/limits.py), given in megabytes."""
    _reject_unknown(data, "limits", {"picture_mb", "gop_mb", "viewer_queue_mb"})
    d = StreamLimits()

    def cap(key: str, default: int) -> int:
        if key not in data:
            return default
        return int(_number(data[key], f"limits.{key}", minimum=0.1, maximum=1024.0) * MB)

    return StreamLimits(
        picture_bytes=cap("picture_mb", d.picture_bytes),
        gop_bytes=cap("gop_mb", d.gop_bytes),
        viewer_queue_bytes=cap("viewer_queue_mb", d.viewer_queue_bytes),
    )


def _auth(value: Any) -> AuthConfig:
    if value is False:  # `auth: false`
        return AuthConfig(enabled=False)
    data = _mapping(value, "auth")
    _reject_unknown(
        data,
        "auth",
        {"enabled", "admin_password", "viewer_password", "session_days", "allowed_hosts"},
    )
    passwords = {}
    for user in ("admin", "viewer"):
        key = f"{user}_password"
        password = _secret_str(data, key, "auth")
        if password is not None and len(password) < 8:
            raise ConfigError(f"auth.{key}: must have at least 8 characters")
        passwords[user] = password
    return AuthConfig(
        enabled=_bool(data.get("enabled", True), "auth.enabled"),
        admin_password=passwords["admin"],
        viewer_password=passwords["viewer"],
        session_days=_number(data.get("session_days", 30), "auth.session_days", 0.01, 365),
        allowed_hosts=tuple(_str_list(data.get("allowed_hosts", []), "auth.allowed_hosts")),
    )


def _tls(value: Any) -> TlsConfig | None:
    """`tls: self-signed`, `tls: {cert, key}`, or nothing (plain HTTP)."""
    if value is None or value is False:
        return None
    if value == "self-signed" or value is True:
        return TlsConfig()
    data = _mapping(value, "tls")
    _reject_unknown(data, "tls", {"cert", "key"})
    cert, key = _required_str(data, "cert", "tls"), _required_str(data, "key", "tls")
    for name, path in (("cert", cert), ("key", key)):
        if not Path(path).is_file():
            raise ConfigError(f"tls.{name}: {path!r} is not a readable file")
    return TlsConfig(cert=cert, key=key)


def _ptz(data: dict[str, Any]) -> PtzSettings:
    _reject_unknown(data, "ptz", {"deadman", "max_move"})
    d = PtzSettings()
    return PtzSettings(
        deadman_s=_number(data.get("deadman", d.deadman_s), "ptz.deadman", 0.2, 10.0),
        max_move_s=_number(data.get("max_move", d.max_move_s), "ptz.max_move", 1.0, 600.0),
    )


MQTT_KEYS = {
    "host",
    "port",
    "username",
    "password",
    "tls",
    "client_id",
    "node_id",
    "protocol",
    "keepalive",
    "topic_prefix",
    "discovery",
    "discovery_prefix",
    "snapshot_interval",
    "move_speed",
    "move_timeout",
}


def _mqtt(data: dict[str, Any]) -> MqttConfig:
    _reject_unknown(data, "mqtt", MQTT_KEYS)
    d = MqttConfig(host="")
    host = _required_str(data, "host", "mqtt")
    if "://" in host or "/" in host:
        raise ConfigError("mqtt.host: must be a host name or IP address, not a URL")
    tls = _mqtt_tls(data.get("tls", False))
    default_port = 8883 if tls is not None else 1883
    port = int(_number(data.get("port", default_port), "mqtt.port", 1, 65535, integer=True))
    username, password = (
        _secret_str(data, "username", "mqtt"),
        _secret_str(data, "password", "mqtt"),
    )
    if password is not None and not username:
        raise ConfigError("mqtt.password: needs `username` too")
    # Unique per machine by default: brokers disconnect the older of two clients with one id,
    # and two gateways must not share availability, topics or Home Assistant ids.
    node_id = _optional_str(data, "node_id", "mqtt") or default_node_id()
    if not NODE_ID.match(node_id):
        raise ConfigError("mqtt.node_id: must be 1-64 letters, digits, '-' or '_'")
    client_id = _optional_str(data, "client_id", "mqtt") or node_id
    if not 1 <= len(client_id) <= 64 or not client_id.isprintable():
        raise ConfigError("mqtt.client_id: must be 1-64 printable characters")
    protocol = str(data.get("protocol", d.protocol))  # YAML reads `5` as a number
    if protocol not in ("3.1.1", "5"):
        raise ConfigError(f"mqtt.protocol: {protocol!r} is not one of 3.1.1, 5")
    keepalive = _number(data.get("keepalive", d.keepalive_s), "mqtt.keepalive", 5, 3600, True)
    # A level of its own per gateway unless the prefix is chosen (`frigate`, or `camgate` to
    # keep the topics of versions before node ids).
    topic_prefix = (
        _topic_prefix(data["topic_prefix"], "mqtt.topic_prefix")
        if "topic_prefix" in data
        else f"{d.topic_prefix}/{node_id}"
    )
    return MqttConfig(
        host=host.removeprefix("[").removesuffix("]"),
        port=port,
        username=username or None,
        password=password if username else None,
        tls=tls,
        client_id=client_id,
        protocol=protocol,  # type: ignore[arg-type]
        keepalive_s=int(keepalive),
        node_id=node_id,
        topic_prefix=topic_prefix,
        legacy_prefix=data.get("topic_prefix", d.topic_prefix),
        discovery=_bool(data.get("discovery", d.discovery), "mqtt.discovery"),
        discovery_prefix=_topic_prefix(
            data.get("discovery_prefix", d.discovery_prefix), "mqtt.discovery_prefix"
        ),
        snapshot_interval_s=_number(
            data.get("snapshot_interval", 0), "mqtt.snapshot_interval", 0, 86400
        ),
        move_speed=_number(data.get("move_speed", d.move_speed), "mqtt.move_speed", 0.01, 1),
        move_timeout_s=_number(
            data.get("move_timeout", d.move_timeout_s), "mqtt.move_timeout", 0.1, 60
        ),
    )


def _mqtt_tls(value: Any) -> MqttTls | None:
    """`tls: true` (system CAs), `tls: false`/absent, or a mapping of files."""
    if isinstance(value, bool):
        return MqttTls() if value else None
    data = _mapping(value, "mqtt.tls")
    _reject_unknown(data, "mqtt.tls", {"ca", "cert", "key", "insecure"})
    files = {k: _optional_str(data, k, "mqtt.tls") for k in ("ca", "cert", "key")}
    for k, path in files.items():
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"mqtt.tls.{k}: {path!r} is not a readable file")
    if files["key"] and not files["cert"]:
        raise ConfigError("mqtt.tls.key: needs `cert` too")
    return MqttTls(
        ca=files["ca"],
        cert=files["cert"],
        key=files["key"],
        insecure=_bool(data.get("insecure", False), "mqtt.tls.insecure"),
    )


def _topic_prefix(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip("/"):
        raise ConfigError(f"{key}: must be a non-empty topic such as 'camgate'")
    if any(c in value for c in "+#\0") or value.startswith("$"):
        raise ConfigError(f"{key}: {value!r} must not contain +, #, NUL or start with $")
    if value != value.strip("/") or "//" in value or len(value) > 128:
        raise ConfigError(
            f"{key}: {value!r} must not start or end with '/', contain '//', "
            "or be longer than 128 characters"
        )
    return value


def _camera(data: dict[str, Any], key: str) -> CameraConfig:
    _reject_unknown(
        data,
        key,
        {"name", "source", "transport", "preload", "linger", "demo", "onvif", "picamera"},
    )
    name = _required_str(data, "name", key)
    if not CAMERA_NAME.match(name):
        raise ConfigError(
            f"{key}.name: {name!r} must be 1-64 letters, digits, '-' or '_' "
            "(it becomes part of URLs and MQTT topics)"
        )
    onvif = (
        _onvif(_mapping(data["onvif"], f"{key}.onvif"), f"{key}.onvif") if "onvif" in data else None
    )
    if onvif is not None and "source" not in data:
        source = None  # the stream URL comes from the camera (ONVIF GetStreamUri)
    elif "picamera" in data and "source" not in data:
        source = PICAMERA_SOURCE  # `picamera: {...}` alone is enough
    elif "source" not in data:
        raise ConfigError(
            f"{key}: needs `source` (an rtsp:// URL, 'picamera' or 'demo') or an `onvif` "
            "block, or both (then ONVIF is used for PTZ only)"
        )
    else:
        source = _required_str(data, "source", key)
    if onvif is not None and source in (DEMO_SOURCE, PICAMERA_SOURCE):
        raise ConfigError(f"{key}.onvif: the {source} camera cannot have an `onvif` block")
    if "picamera" in data and source != PICAMERA_SOURCE:
        raise ConfigError(f"{key}.picamera: only for `source: picamera`")
    if source is not None and source not in (DEMO_SOURCE, PICAMERA_SOURCE):
        if not source.lower().startswith(("rtsp://", "rtsps://")):
            raise ConfigError(
                f"{key}.source: must be an rtsp:// or rtsps:// URL, 'picamera' or 'demo'"
            )
        try:
            parse_url(source)
        except ValueError as exc:  # the message never repeats the URL (credentials)
            raise ConfigError(f"{key}.source: {exc}") from None
    transport = _choice(data.get("transport", "tcp"), f"{key}.transport", ("tcp", "udp"))
    preload = _bool(data.get("preload", False), f"{key}.preload")
    linger = _number(data.get("linger", 10.0), f"{key}.linger", minimum=0.0, maximum=3600.0)
    demo = _demo(_mapping(data.get("demo", {}), f"{key}.demo"), f"{key}.demo")
    picamera = _picamera(_mapping(data.get("picamera", {}), f"{key}.picamera"), f"{key}.picamera")
    return CameraConfig(
        name=name,
        source=source,
        transport=transport,  # type: ignore[arg-type]
        preload=preload,
        linger_s=linger,
        demo=demo,
        onvif=onvif,
        picamera=picamera,
    )


def _onvif(data: dict[str, Any], key: str) -> OnvifConfig:
    _reject_unknown(data, key, {"host", "port", "username", "password", "profile", "timeout"})
    host = _required_str(data, "host", key)
    if "://" in host or "/" in host or "@" in host:
        raise ConfigError(f"{key}.host: must be a host name or IP address, not a URL")
    host = host.removeprefix("[").removesuffix("]")
    port = int(_number(data.get("port", 80), f"{key}.port", 1, 65535, integer=True))
    username, password = _secret_str(data, "username", key), _secret_str(data, "password", key)
    if password is not None and not username:
        raise ConfigError(f"{key}.password: needs `username` too")
    profile = _optional_str(data, "profile", key)
    if profile is not None and not profile.strip():
        raise ConfigError(f"{key}.profile: must be a profile name or token, or left out")
    timeout = _number(data.get("timeout", 5.0), f"{key}.timeout", minimum=0.5, maximum=60.0)
    return OnvifConfig(
        host=host,
        port=port,
        username=username or None,
        password=password if username else None,
        profile=profile.strip() if profile else None,
        timeout_s=timeout,
    )


def _picamera(data: dict[str, Any], key: str) -> PicameraSettings:
    _reject_unknown(
        data,
        key,
        {
            "camera",
            "width",
            "height",
            "framerate",
            "bitrate",
            "iperiod",
            "profile",
            "hflip",
            "vflip",
            "rotation",
        },
    )
    d = PicameraSettings()
    width = int(_number(data.get("width", d.width), f"{key}.width", 64, 1920, integer=True))
    height = int(_number(data.get("height", d.height), f"{key}.height", 64, 1080, integer=True))
    if width % 2 or height % 2:
        raise ConfigError(f"{key}: width and height must be even numbers")
    framerate = int(_number(data.get("framerate", d.framerate), f"{key}.framerate", 1, 120, True))
    iperiod = data.get("iperiod")
    rotation = data.get("rotation", 0)
    if rotation not in (0, 180):
        raise ConfigError(
            f"{key}.rotation: {rotation!r}: the Pi camera turns by 0 or 180 degrees only "
            "(use hflip/vflip for mirror images)"
        )
    return PicameraSettings(
        camera=int(_number(data.get("camera", 0), f"{key}.camera", 0, 15, integer=True)),
        width=width,
        height=height,
        framerate=framerate,
        bitrate=int(
            _number(data.get("bitrate", d.bitrate), f"{key}.bitrate", 100_000, 25_000_000, True)
        ),
        iperiod=None
        if iperiod is None
        else int(_number(iperiod, f"{key}.iperiod", 1, 1000, integer=True)),
        profile=_choice(
            data.get("profile", d.profile), f"{key}.profile", ("baseline", "main", "high")
        ),  # type: ignore[arg-type]
        hflip=_bool(data.get("hflip", False), f"{key}.hflip"),
        vflip=_bool(data.get("vflip", False), f"{key}.vflip"),
        rotation=rotation,
    )


def _demo(data: dict[str, Any], key: str) -> DemoSettings:
    _reject_unknown(data, key, {"width", "height", "fps", "bitrate_kbps", "gop_seconds"})
    d = DemoSettings()
    width = int(_number(data.get("width", d.width), f"{key}.width", 64, 3840, integer=True))
    height = int(_number(data.get("height", d.height), f"{key}.height", 64, 2160, integer=True))
    if width % 2 or height % 2:
        raise ConfigError(f"{key}: width and height must be even numbers")
    return DemoSettings(
        width=width,
        height=height,
        fps=int(_number(data.get("fps", d.fps), f"{key}.fps", 1, 60, integer=True)),
        bitrate_kbps=int(
            _number(
                data.get("bitrate_kbps", d.bitrate_kbps),
                f"{key}.bitrate_kbps",
                100,
                20_000,
                integer=True,
            )
        ),
        gop_seconds=_number(
            data.get("gop_seconds", d.gop_seconds), f"{key}.gop_seconds", 0.1, 60.0
        ),
    )


def _webrtc(data: dict[str, Any]) -> WebRtcConfig:
    _reject_unknown(data, "webrtc", {"ice_servers", "candidates", "send_workers"})
    servers_raw = data.get("ice_servers", [])
    if not isinstance(servers_raw, list):
        raise ConfigError("webrtc.ice_servers: must be a list")
    servers = tuple(_ice_server(s, f"webrtc.ice_servers[{i}]") for i, s in enumerate(servers_raw))
    candidates = _candidates(_mapping(data.get("candidates", {}), "webrtc.candidates"))
    workers = data.get("send_workers", 0)
    if workers == "auto":  # every core but the one the gateway's own process needs
        workers = max((os.cpu_count() or 1) - 1, 0)
    send_workers = int(_number(workers, "webrtc.send_workers", 0, 64, integer=True))
    return WebRtcConfig(ice_servers=servers, candidates=candidates, send_workers=send_workers)


CLIENT_LIMIT_KEYS = {
    "viewers_per_client": ("sessions", "sessions_per_client", 1, 10_000),
    "viewers_total": ("sessions", "sessions_total", 1, 10_000),
    "connecting_per_client": ("sessions", "pending_per_client", 1, 10_000),
    "connecting_total": ("sessions", "pending_total", 1, 10_000),
    "http_connections": ("http", "max_connections", 8, 100_000),
    "http_connections_per_address": ("http", "max_per_address", 4, 100_000),
    "http_idle_timeout": ("http", "idle_timeout_s", 1, 3600),
}


def _client_limits(data: dict[str, Any]) -> ClientLimits:
    _reject_unknown(data, "client_limits", set(CLIENT_LIMIT_KEYS))
    chosen: dict[str, dict[str, float]] = {"sessions": {}, "http": {}}
    for key, (part, attr, low, high) in CLIENT_LIMIT_KEYS.items():
        if key in data:
            integer = key != "http_idle_timeout"
            value = _number(data[key], f"client_limits.{key}", low, high, integer=integer)
            chosen[part][attr] = int(value) if integer else value
    return ClientLimits(
        sessions=SessionQuota(**chosen["sessions"]),  # type: ignore[arg-type]
        http=ConnectionLimits(**chosen["http"]),  # type: ignore[arg-type]
    )


def _ice_server(raw: Any, key: str) -> IceServer:
    if isinstance(raw, str):
        raw = {"urls": raw}
    data = _mapping(raw, key)
    _reject_unknown(data, key, {"urls", "username", "credential"})
    urls_raw = data.get("urls")
    urls = [urls_raw] if isinstance(urls_raw, str) else urls_raw
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise ConfigError(f"{key}.urls: must be a URL or a list of URLs (stun:, turn:, turns:)")
    for url in urls:
        if not url.lower().startswith(("stun:", "turn:", "turns:")):
            raise ConfigError(f"{key}.urls: {url!r} must start with stun:, turn: or turns:")
    username = _optional_str(data, "username", key)
    credential = _optional_str(data, "credential", key)
    if any(u.lower().startswith("turn") for u in urls) and not (username and credential):
        raise ConfigError(f"{key}: a TURN server needs username and credential")
    return IceServer(urls=tuple(urls), username=username, credential=credential)


def _candidates(data: dict[str, Any]) -> CandidateFilter:
    key = "webrtc.candidates"
    _reject_unknown(data, key, {"interfaces", "addresses", "ipv6"})
    interfaces = _str_list(data.get("interfaces", []), f"{key}.interfaces")
    addresses = _str_list(data.get("addresses", []), f"{key}.addresses")
    for i, addr in enumerate(addresses):
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            raise ConfigError(f"{key}.addresses[{i}]: {addr!r} is not an IP address") from None
    ipv6 = _bool(data.get("ipv6", True), f"{key}.ipv6")
    return CandidateFilter(interfaces=tuple(interfaces), addresses=tuple(addresses), ipv6=ipv6)


def parse_listen(value: Any, key: str = "listen") -> tuple[str, int]:
    """`HOST:PORT`, `:PORT`, `PORT` or `[v6]:PORT`."""
    text = str(value).strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip("[]") or DEFAULT_LISTEN[0]
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{key}: {text!r} must be HOST:PORT with a port from 1 to 65535")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"{key}: {host!r} is not an IP address") from None
    return host, int(port_text)


# --- typed field readers --------------------------------------------------------------


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key or 'config'}: must be a mapping (key: value pairs)")
    for k in value:
        if not isinstance(k, str):
            raise ConfigError(f"{key or 'config'}: key {_shown(k)} must be a string")
    return value


def _reject_unknown(data: dict[str, Any], key: str, allowed: set[str]) -> None:
    for k in data:
        if k not in allowed:
            where = f"{key}.{k}" if key else k
            raise ConfigError(f"{where}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _required_str(data: dict[str, Any], name: str, key: str) -> str:
    if name not in data:
        raise ConfigError(f"{key}.{name}: missing")
    value = data[name]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}.{name}: must be a non-empty string")
    return value.strip()


def _optional_str(data: dict[str, Any], name: str, key: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{key}.{name}: must be a string")
    return value


def _secret_str(data: dict[str, Any], name: str, key: str) -> str | None:
    """A credential: text or absent. The error never repeats the value."""
    value = data.get(name)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        # YAML reads `password: 012345` as the number 12345: the camera would refuse it.
        raise ConfigError(f"{key}.{name}: must be text: put it in quotes")
    raise ConfigError(f"{key}.{name}: must be a string")


def _str_list(value: Any, key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{key}: must be a list of strings")
    return value


def _choice(value: Any, key: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise ConfigError(f"{key}: {_shown(value)} is not one of {', '.join(choices)}")
    return value.lower()


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: {_shown(value)} must be true or false")
    return value


def _number(value: Any, key: str, minimum: float, maximum: float, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}: {_shown(value)} must be a number")
    if integer and not float(value).is_integer():
        raise ConfigError(f"{key}: {value!r} must be a whole number")
    if not minimum <= value <= maximum:
        raise ConfigError(f"{key}: {value!r} must be between {minimum:g} and {maximum:g}")
    return float(value)

import os

import pytest

from gateway.config import ConfigError, demo_config, parse_config, parse_listen
from gateway.node_identity import NODE_ID, default_node_id

GOOD = """
listen: 127.0.0.1:9000
webrtc:
  ice_servers:
    - stun:stun.example.org:3478
    - urls: [turn:turn.example.org:3478]
      username: u
      credential: p
  candidates:
    interfaces: [eth0]
    addresses: [127.0.0.1]
cameras:
  - name: garage
    source: rtsp://admin:secret@192.0.2.10/stream1
    transport: udp
    preload: true
  - name: demo
    source: demo
"""


def test_full_config_parses() -> None:
    config = parse_config(GOOD)
    assert config.listen == ("127.0.0.1", 9000)
    assert [c.name for c in config.cameras] == ["garage", "demo"]
    garage = config.cameras[0]
    assert garage.transport == "udp" and garage.preload and garage.kind != "demo"
    assert config.cameras[1].kind == "demo" and config.cameras[1].transport == "tcp"
    assert config.webrtc.ice_servers[1].username == "u"
    assert config.webrtc.candidates.restricted


def test_demo_config_is_one_preloaded_demo_camera() -> None:
    config = demo_config()
    assert (
        len(config.cameras) == 1 and config.cameras[0].kind == "demo" and config.cameras[0].preload
    )
    assert config.listen == ("0.0.0.0", 8080)
    assert not config.webrtc.ice_servers  # no public STUN server by default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cameras: []", "cameras: must be a non-empty list"),
        ("{}", "cameras: missing"),
        ("cameras: [{source: demo}]", "cameras[0].name: missing"),
        ("cameras: [{name: a, source: demo, transport: sctp}]", "cameras[0].transport"),
        ("cameras: [{name: a, source: http://x}]", "cameras[0].source"),
        (
            "cameras: [{name: a, source: 'rtsp://u:p@h:99999/x'}]",
            "cameras[0].source: URL has an invalid port",
        ),
        ("cameras: [{name: a, source: 'rtsp:///x'}]", "cameras[0].source: URL has no host"),
        ("cameras: [{name: 'a b', source: demo}]", "cameras[0].name"),
        ("cameras: [{name: a, source: demo}, {name: A, source: demo}]", "duplicate"),
        ("cameras: [{name: a, source: demo, preload: yes please}]", "cameras[0].preload"),
        ("cameras: [{name: a, source: demo, colour: red}]", "cameras[0].colour: unknown key"),
        ("cameras: [{name: a, source: demo}]\nlisten: nope", "listen"),
        ("cameras: [{name: a, source: demo}]\nwebrtc: {ice_servers: [turn:x]}", "TURN"),
        (
            "cameras: [{name: a, source: demo}]\nwebrtc: {candidates: {addresses: [x]}}",
            "webrtc.candidates.addresses[0]",
        ),
        ("cameras: [{name: a, source: demo}]\nwebrtc: {send_workers: -1}", "webrtc.send_workers"),
        ("cameras: [{name: a, source: demo}]\nwebrtc: {send_workers: many}", "webrtc.send_workers"),
        ("cameras: [{name: a, source: demo}]\nwebrtc: {send_workers: 1.5}", "webrtc.send_workers"),
        ("cameras: [{name: a, source: demo, demo: {width: 641}}]", "even"),
        ("cameras: [\n  - name: a\n  source: x", "line"),
        ("- just a list", "config: must be a mapping"),
    ],
)
def test_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        parse_config(text)
    assert message in str(info.value)


def test_errors_never_echo_credentials() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("cameras: [{name: a, source: 'rtsp://u:hunter2@h/x', transport: 3}]")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8081", ("0.0.0.0", 8081)),
        (":8081", ("0.0.0.0", 8081)),
        ("127.0.0.1:1", ("127.0.0.1", 1)),
        ("[::1]:8080", ("::1", 8080)),
    ],
)
def test_listen_forms(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["0", "70000", "host:80", "1.2.3.4:x"])
def test_listen_rejects(value: str) -> None:
    with pytest.raises(ConfigError):
        parse_listen(value)


def test_shipped_example_config_is_valid() -> None:
    from pathlib import Path

    from gateway.config import load_config

    config = load_config(Path(__file__).parents[2] / "camgate.example.yaml")
    assert [c.name for c in config.cameras] == ["driveway", "garden", "porch", "yard", "pi", "demo"]
    porch, yard = config.cameras[2], config.cameras[3]
    assert porch.kind == "onvif" and porch.onvif and porch.onvif.profile == "SubStream"
    assert yard.kind != "onvif" and yard.onvif and yard.source  # ONVIF for PTZ only


# --- onvif cameras ----------------------------------------------------------------------


def test_onvif_camera_without_source_streams_via_onvif() -> None:
    config = parse_config(
        "cameras: [{name: ptz, onvif: {host: 192.0.2.5, username: admin, password: hunter2}}]"
    )
    cam = config.cameras[0]
    assert cam.source is None and cam.kind == "onvif" and cam.kind != "demo"
    assert cam.onvif is not None
    assert (cam.onvif.host, cam.onvif.port, cam.onvif.timeout_s) == ("192.0.2.5", 80, 5.0)
    assert cam.onvif.username == "admin" and cam.onvif.password == "hunter2"
    assert cam.onvif.profile is None
    assert "hunter2" not in repr(cam) and "hunter2" not in repr(config)


def test_onvif_block_with_rtsp_source_is_for_ptz_only() -> None:
    config = parse_config(
        "cameras: [{name: ptz, source: 'rtsp://h/x', transport: udp,"
        " onvif: {host: 'fe80::1', port: 8000, profile: ' Sub ', timeout: 2.5}}]"
    )
    cam = config.cameras[0]
    assert cam.source == "rtsp://h/x" and cam.kind != "onvif"
    assert cam.onvif is not None and cam.onvif.address == "[fe80::1]:8000"
    assert cam.onvif.profile == "Sub" and cam.onvif.timeout_s == 2.5
    assert cam.onvif.username is None and cam.onvif.password is None


@pytest.mark.parametrize(
    ("camera", "message"),
    [
        ("{name: a}", "cameras[0]: needs `source`"),
        ("{name: a, onvif: {}}", "cameras[0].onvif.host: missing"),
        ("{name: a, onvif: 192.0.2.5}", "cameras[0].onvif: must be a mapping"),
        ("{name: a, onvif: {host: 'http://192.0.2.5/'}}", "cameras[0].onvif.host: must be a host"),
        ("{name: a, onvif: {host: h, port: 0}}", "cameras[0].onvif.port"),
        ("{name: a, onvif: {host: h, port: 80.5}}", "cameras[0].onvif.port"),
        ("{name: a, onvif: {host: h, timeout: 0}}", "cameras[0].onvif.timeout"),
        ("{name: a, onvif: {host: h, user: x}}", "cameras[0].onvif.user: unknown key"),
        ("{name: a, onvif: {host: h, password: hunter2}}", "cameras[0].onvif.password: needs"),
        ("{name: a, onvif: {host: h, username: u, password: 12345}}", "put it in quotes"),
        ("{name: a, onvif: {host: h, username: [u]}}", "cameras[0].onvif.username"),
        ("{name: a, onvif: {host: h, profile: ''}}", "cameras[0].onvif.profile"),
        ("{name: a, source: demo, onvif: {host: h}}", "cameras[0].onvif: the demo camera"),
    ],
)
def test_onvif_errors_name_the_key(camera: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f"cameras: [{camera}]")
    assert message in str(info.value)
    assert "hunter2" not in str(info.value) and "12345" not in str(info.value)


def test_ptz_safety_limits() -> None:
    config = parse_config("cameras: [{name: a, source: demo}]\nptz: {deadman: 0.5, max_move: 10}")
    assert (config.ptz.deadman_s, config.ptz.max_move_s) == (0.5, 10.0)
    assert parse_config("cameras: [{name: a, source: demo}]").ptz.deadman_s == 1.0
    with pytest.raises(ConfigError, match=r"ptz\.deadman"):
        parse_config("cameras: [{name: a, source: demo}]\nptz: {deadman: 0}")


# --- mqtt -------------------------------------------------------------------------------

CAMERAS = "cameras: [{name: a, source: demo}]\n"


def test_mqtt_defaults() -> None:
    config = parse_config(CAMERAS + "mqtt: {host: broker.lan}")
    mqtt = config.mqtt
    assert mqtt is not None
    assert (mqtt.host, mqtt.port, mqtt.protocol, mqtt.tls) == ("broker.lan", 1883, "3.1.1", None)
    # Unique per gateway: a level of its own under `camgate`, client id and node id alike.
    assert NODE_ID.match(mqtt.node_id) and mqtt.node_id.startswith("camgate-")
    assert (mqtt.topic_prefix, mqtt.discovery, mqtt.discovery_prefix) == (
        f"camgate/{mqtt.node_id}",
        True,
        "homeassistant",
    )
    assert mqtt.client_id == mqtt.node_id and mqtt.legacy_prefix == "camgate"
    assert parse_config(CAMERAS).mqtt is None


def test_mqtt_old_layout_by_choice() -> None:
    mqtt = parse_config(CAMERAS + "mqtt: {host: h, topic_prefix: camgate, node_id: camgate}").mqtt
    assert mqtt is not None
    assert (mqtt.topic_prefix, mqtt.node_id, mqtt.client_id) == ("camgate", "camgate", "camgate")
    with pytest.raises(ConfigError, match=r"mqtt\.node_id"):
        parse_config(CAMERAS + "mqtt: {host: h, node_id: 'a/b'}")


def test_node_id_from_machine_id_then_host_name(tmp_path) -> None:
    first, second, empty = (tmp_path / n for n in ("first", "second", "empty"))
    first.write_text("0123456789abcdef0123456789abcdef\n")
    second.write_text("fedcba9876543210fedcba9876543210\n")
    empty.write_text("uninitialized\n")  # an image not booted yet
    # Two cards flashed from one image: one host name, two machine ids, two node ids.
    ids = {default_node_id(path, hostname="camgate") for path in (first, second)}
    assert len(ids) == 2 and all(NODE_ID.match(i) for i in ids)
    assert default_node_id(first, hostname="x") == default_node_id(first, hostname="y")
    assert "0123456789" not in default_node_id(first)  # the machine id stays private
    assert default_node_id(empty, hostname="pi.lan") == "camgate-pi"
    assert default_node_id(tmp_path / "none", hostname="my cam!") == "camgate-my_cam_"


def test_mqtt_full(tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    config = parse_config(
        CAMERAS
        + f"""mqtt:
  host: 10.0.0.5
  username: ha
  password: "012345"
  tls: {{ca: {ca}, insecure: true}}
  client_id: cg1
  protocol: 5
  topic_prefix: home/cams
  discovery: false
  snapshot_interval: 30
  move_speed: 0.8
  move_timeout: 5
"""
    )
    mqtt = config.mqtt
    assert mqtt is not None
    assert mqtt.port == 8883 and mqtt.tls is not None and mqtt.tls.ca == str(ca)
    assert mqtt.tls.insecure and mqtt.protocol == "5" and mqtt.client_id == "cg1"
    assert (mqtt.topic_prefix, mqtt.discovery, mqtt.snapshot_interval_s) == ("home/cams", False, 30)
    assert (mqtt.move_speed, mqtt.move_timeout_s) == (0.8, 5)
    assert "012345" not in repr(config)
    assert parse_config(CAMERAS + "mqtt: {host: h, tls: true}").mqtt.tls is not None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("mqtt", "message"),
    [
        ("{port: 1883}", "mqtt.host: missing"),
        ("{host: 'mqtt://h'}", "mqtt.host: must be a host name"),
        ("{host: h, port: 0}", "mqtt.port"),
        ("{host: h, password: x}", "mqtt.password: needs `username`"),
        ("{host: h, username: u, password: 1234}", "mqtt.password: must be text"),
        ("{host: h, protocol: 4}", "mqtt.protocol"),
        ("{host: h, topic_prefix: 'a/#'}", "mqtt.topic_prefix"),
        ("{host: h, topic_prefix: '/a'}", "mqtt.topic_prefix"),
        ("{host: h, topic_prefix: ''}", "mqtt.topic_prefix"),
        ("{host: h, discovery_prefix: '$SYS'}", "mqtt.discovery_prefix"),
        ("{host: h, tls: {ca: /nonexistent/ca.pem}}", "mqtt.tls.ca"),
        ("{host: h, tls: {cafile: x}}", "mqtt.tls.cafile: unknown key"),
        ("{host: h, move_timeout: 0}", "mqtt.move_timeout"),
        ("{host: h, move_speed: 2}", "mqtt.move_speed"),
        ("{host: h, snapshot_interval: -1}", "mqtt.snapshot_interval"),
        ("{host: h, brokers: [x]}", "mqtt.brokers: unknown key"),
        ("[h]", "mqtt: must be a mapping"),
    ],
)
def test_mqtt_errors_name_the_key(mqtt: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(CAMERAS + "mqtt: " + mqtt)
    assert message in str(info.value)
    assert "1234" not in str(info.value)


def test_send_workers() -> None:
    base = "cameras: [{name: a, source: demo}]\n"
    assert parse_config(base).webrtc.send_workers == 0
    assert parse_config(base + "webrtc: {send_workers: 3}").webrtc.send_workers == 3
    auto = parse_config(base + "webrtc: {send_workers: auto}").webrtc.send_workers
    assert auto == max((os.cpu_count() or 1) - 1, 0)


# --- the line of every error ------------------------------------------------------------

LINED = """\
listen: 8080
cameras:
  - name: front
    source: demo
  - name: back
    source: demo
    demo:
      width: {width}
      {extra}
mqtt:
  host: broker.lan
  port: {port}
"""


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"width": 5000}, "cameras[1].demo.width: 5000 must be between 64 and 3840 (line 8)"),
        ({"width": 641}, "cameras[1].demo: width and height must be even numbers (line 7)"),
        ({"extra": "colour: red"}, "cameras[1].demo.colour: unknown key (allowed: "),
        ({"port": "'x'"}, "mqtt.port: 'x' must be a number (line 12)"),
        ({"port": 0}, "mqtt.port: 0 must be between 1 and 65535 (line 12)"),
    ],
)
def test_every_error_names_its_line(values: dict[str, object], message: str) -> None:
    text = LINED.format(**{"width": 640, "extra": "", "port": 1883, **values})
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert str(info.value).startswith(message)
    if "colour" in message:
        assert str(info.value).endswith("(line 9)")
        assert "allowed: bitrate_kbps, fps, gop_seconds, height, width" in str(info.value)


def test_a_merged_key_points_at_its_own_line() -> None:
    text = "cameras:\n  - &cam {name: a, source: demo}\n  - <<: *cam\n    name: b\n    linger: -1\n"
    with pytest.raises(ConfigError, match=r"^cameras\[1\]\.linger: -1 .* \(line 5\)$"):
        parse_config(text)


def test_whole_numbers_may_be_written_as_decimals_and_choices_in_capitals() -> None:
    config = parse_config(
        "cameras: [{name: a, source: demo, transport: UDP, demo: {fps: 10.0}}]\n"
        "log_level: INFO\nmqtt: {host: h, port: 1884.0, protocol: 5}"
    )
    camera, mqtt = config.cameras[0], config.mqtt
    assert (camera.transport, camera.demo.fps, config.log_level) == ("udp", 10, "info")
    assert mqtt is not None and (mqtt.port, mqtt.protocol) == (1884, "5")
    assert isinstance(camera.demo.fps, int) and isinstance(mqtt.port, int)


def test_a_key_that_is_not_text_is_named_with_its_line() -> None:
    with pytest.raises(ConfigError, match=r"^cameras\[0\]: key 5\.5 must be a string \(line 4\)$"):
        parse_config("cameras:\n  - name: a\n    source: demo\n    5.5: x\n")


# --- sub streams ------------------------------------------------------------------------


def test_an_rtsp_camera_takes_a_substream_url_kept_secret() -> None:
    config = parse_config(
        "cameras: [{name: door, source: 'rtsp://admin:hunter2@h/main',"
        " substream: ' rtsp://admin:hunter2@h/sub '}]"
    )
    cam = config.cameras[0]
    assert cam.substream == "rtsp://admin:hunter2@h/sub"
    assert "hunter2" not in repr(cam) and "hunter2" not in repr(config)
    assert parse_config("cameras: [{name: a, source: 'rtsp://h/x'}]").cameras[0].substream is None


@pytest.mark.parametrize(
    ("camera", "says"),
    [
        ("{name: a, source: 'rtsp://h/x', substream: 'http://admin:hunter2@h/sub'}", "rtsp"),
        ("{name: a, source: demo, substream: 'rtsp://admin:hunter2@h/sub'}", "only for"),
        ("{name: a, onvif: {host: h}, substream: 'rtsp://admin:hunter2@h/sub'}", "only for"),
    ],
)
def test_a_bad_substream_is_refused_without_repeating_it(camera: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"cameras: [{camera}]")
    text = str(caught.value)
    assert "cameras[0].substream" in text and says in text and "hunter2" not in text


def test_an_onvif_camera_finds_its_substream_unless_told_otherwise() -> None:
    def onvif(block: str) -> object:
        return parse_config(f"cameras: [{{name: a, onvif: {{host: h{block}}}}}]").cameras[0].onvif

    assert onvif("").substream == "auto"  # type: ignore[attr-defined]
    assert onvif(", substream: off").substream == "off"  # type: ignore[attr-defined]
    assert onvif(", substream: ' Profile_2 '").substream == "Profile_2"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="substream"):
        onvif(", substream: '  '")

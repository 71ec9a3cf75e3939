"""WS-Discovery messages, parsed the way real cameras send them (samples written after
Hikvision, Axis and no-name firmware replies), the records and snippets built from them,
and the HTTP endpoint's shared probe."""

from __future__ import annotations

import asyncio
import xml.parsers.expat

import pytest
import yaml

from gateway.discovery.probe import ProbeResult, Source
from gateway.discovery.records import build_devices, config_snippet
from gateway.discovery.report import format_report
from gateway.discovery.wsdiscovery import (
    DiscoveryParseError,
    ProbeMatch,
    build_probe,
    new_message_id,
    parse_probe_matches,
    pick_xaddr,
    read_scopes,
    show_datagram,
    slugify,
)
from gateway.http.discover import SharedProbe, _timeout
from tests.rig.wsdiscovery_responder import WsDiscoveryResponder

PROBE_ID = "urn:uuid:6a4e1c2e-9c1f-4a5b-8d7e-0f1e2d3c4b5a"

# SOAP 1.2, WS-Addressing 2004/08, env:/wsa:/wsdd: prefixes, MAC and Profile scopes,
# a link-local IPv6 XAddr beside the IPv4 one.
HIKVISION = f"""<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
 xmlns:soapenc="http://www.w3.org/2003/05/soap-encoding"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
 xmlns:xsd="http://www.w3.org/2001/XMLSchema"
 xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:wsdd="http://schemas.xmlsoap.org/ws/2005/04/discovery"
 xmlns:dn="http://www.onvif.org/ver10/network/wsdl"
 xmlns:tds="http://www.onvif.org/ver10/device/wsdl">
<env:Header>
<wsa:MessageID>urn:uuid:8f3b2c1a-1111-2222-3333-bcbac2a1b2c3</wsa:MessageID>
<wsa:RelatesTo>{PROBE_ID}</wsa:RelatesTo>
<wsa:To env:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>
<wsa:Action env:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>
<wsdd:AppSequence InstanceId="1565071316" MessageNumber="7"/>
</env:Header>
<env:Body><wsdd:ProbeMatches><wsdd:ProbeMatch>
<wsa:EndpointReference><wsa:Address>urn:uuid:54575755-3032-3333-3434-bcbac2a1b2c3</wsa:Address></wsa:EndpointReference>
<wsdd:Types>dn:NetworkVideoTransmitter tds:Device</wsdd:Types>
<wsdd:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/Profile/Streaming
 onvif://www.onvif.org/Profile/G onvif://www.onvif.org/Profile/T
 onvif://www.onvif.org/MAC/bc:ba:c2:a1:b2:c3 onvif://www.onvif.org/hardware/DS-2DE4A425IW-DE
 onvif://www.onvif.org/name/HIKVISION%20DS-2DE4A425IW-DE onvif://www.onvif.org/location/city/hangzhou</wsdd:Scopes>
<wsdd:XAddrs>http://[fe80::beba:c2ff:fea1:b2c3]/onvif/device_service http://192.168.1.64/onvif/device_service</wsdd:XAddrs>
<wsdd:MetadataVersion>10</wsdd:MetadataVersion>
</wsdd:ProbeMatch></wsdd:ProbeMatches></env:Body></env:Envelope>""".encode()

# Default prefixes, RelatesTo with a bare "uuid:" prefix, type/ptz, country and city,
# non-ONVIF scopes, a global IPv6 XAddr and an https one.
AXIS = b"""<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope"
 xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"
 xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><SOAP-ENV:Header>
<wsa:MessageID>uuid:00408c12-3456-0000-0000-000000000001</wsa:MessageID>
<wsa:RelatesTo>uuid:6a4e1c2e-9c1f-4a5b-8d7e-0f1e2d3c4b5a</wsa:RelatesTo>
<wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>
<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>
</SOAP-ENV:Header><SOAP-ENV:Body><d:ProbeMatches><d:ProbeMatch>
<wsa:EndpointReference><wsa:Address>urn:uuid:00408c12-3456-0000-0000-00408c123456</wsa:Address>
</wsa:EndpointReference><d:Types>dn:NetworkVideoTransmitter</d:Types>
<d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/type/ptz
onvif://www.onvif.org/type/audio_encoder onvif://www.onvif.org/name/AXIS%20Q6135-LE
onvif://www.onvif.org/hardware/Q6135-LE onvif://www.onvif.org/location/country/sweden
onvif://www.onvif.org/location/city/lund onvif://www.onvif.org/Profile/Streaming
http://www.axis.com/scope/firmware/10.12.153</d:Scopes>
<d:XAddrs>http://10.0.0.21/onvif/device_service https://10.0.0.21/onvif/device_service
 http://[2001:db8::240:8cff:fe12:3456]/onvif/device_service</d:XAddrs>
<d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></SOAP-ENV:Body>
</SOAP-ENV:Envelope>"""

# SOAP 1.1 and WS-Addressing 2005/08, no RelatesTo, port 8899, a manufacturer scope,
# NUL padding after the envelope.
NO_NAME = (
    b'<?xml version="1.0" encoding="utf-8"?><s:Envelope '
    b'xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    b'xmlns:a="http://www.w3.org/2005/08/addressing" '
    b'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"><s:Header>'
    b"<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</a:Action>"
    b"</s:Header><s:Body><d:ProbeMatches><d:ProbeMatch><a:EndpointReference>"
    b"<a:Address>urn:uuid:2419d68a-2dd2-21b2-a205-ec2d8f0c1a2b</a:Address></a:EndpointReference>"
    b"<d:Types>NetworkVideoTransmitter</d:Types><d:Scopes>"
    b"onvif://www.onvif.org/type/NetworkVideoTransmitter onvif://www.onvif.org/name/IPC "
    b"onvif://www.onvif.org/manufacturer/Generic%20Vision onvif://www.onvif.org/hardware/"
    b"</d:Scopes><d:XAddrs>http://192.168.1.10:8899/onvif/device_service</d:XAddrs>"
    b"</d:ProbeMatch></d:ProbeMatches></s:Body></s:Envelope>\x00\x00\x00"
)


def _nvr(relates_to: str = PROBE_ID) -> bytes:
    """An NVR answering for two channels in one ProbeMatches."""
    matches = "".join(
        f"<d:ProbeMatch><a:EndpointReference><a:Address>urn:uuid:nvr-{n}</a:Address>"
        f"</a:EndpointReference><d:Scopes>onvif://www.onvif.org/name/Yard</d:Scopes>"
        f"<d:XAddrs>http://192.168.1.{n}:80/onvif/device_service</d:XAddrs></d:ProbeMatch>"
        for n in (30, 31)
    )
    return (
        '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery">'
        f"<e:Header><a:RelatesTo>{relates_to}</a:RelatesTo></e:Header>"
        f"<e:Body><d:ProbeMatches>{matches}</d:ProbeMatches></e:Body></e:Envelope>"
    ).encode()


def test_probe_message_is_a_ws_discovery_probe_for_video_transmitters() -> None:
    message_id = new_message_id()
    assert message_id.startswith("urn:uuid:") and message_id != new_message_id()
    datagram = build_probe(message_id)
    xml.parsers.expat.ParserCreate().Parse(datagram, True)  # well-formed
    assert f"<a:MessageID>{message_id}</a:MessageID>" in datagram.decode()
    assert b"<d:Types>dn:NetworkVideoTransmitter</d:Types>" in datagram
    assert b'xmlns:dn="http://www.onvif.org/ver10/network/wsdl"' in datagram
    with pytest.raises(ValueError):
        build_probe("urn:uuid:</a:MessageID><evil/>")


def test_the_rig_responder_answers_our_probe_and_we_read_its_answer() -> None:
    responder = WsDiscoveryResponder(
        "http://127.0.0.1:8123/onvif/device_service", name="Porch cam", model="TestPTZ"
    )
    message_id = new_message_id()
    reply = responder.answer(build_probe(message_id))
    assert reply is not None, "the strict responder rejected our Probe"
    [match] = parse_probe_matches(reply, message_id)
    assert match.endpoint == responder.endpoint
    assert match.xaddrs == ("http://127.0.0.1:8123/onvif/device_service",)
    info = read_scopes(match.scopes)
    assert (info.name, info.hardware, info.ptz) == ("Porch cam", "TestPTZ", True)


def test_a_probe_match_without_its_wrapper_or_in_other_namespaces_is_read() -> None:
    unwrapped = HIKVISION.replace(b"<wsdd:ProbeMatches>", b"").replace(b"</wsdd:ProbeMatches>", b"")
    wsd11 = unwrapped.replace(
        b"http://schemas.xmlsoap.org/ws/2005/04/discovery",
        b"http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01",
    ).replace(
        b"http://schemas.xmlsoap.org/ws/2004/08/addressing", b"http://www.w3.org/2005/08/addressing"
    )
    nested = HIKVISION.replace(
        b"<wsdd:ProbeMatches>", b"<x:Wrap xmlns:x='urn:x'><wsdd:ProbeMatches>"
    )
    nested = nested.replace(b"</wsdd:ProbeMatches>", b"</wsdd:ProbeMatches></x:Wrap>")
    expected = parse_probe_matches(HIKVISION, PROBE_ID)
    assert len(expected) == 1
    for variant in (unwrapped, wsd11, nested):
        assert parse_probe_matches(variant, PROBE_ID) == expected


def test_a_reply_to_us_without_a_usable_match_says_why() -> None:
    no_address = HIKVISION.replace(b"http://192.168.1.64/", b"ftp://192.168.1.64/")
    no_address = no_address.replace(b"http://[fe80", b"rtsp://[fe80")
    with pytest.raises(DiscoveryParseError, match="usable"):
        parse_probe_matches(no_address, PROBE_ID)
    empty = HIKVISION.split(b"<env:Body>")[0] + b"<env:Body/></env:Envelope>"
    with pytest.raises(DiscoveryParseError, match="without a ProbeMatch"):
        parse_probe_matches(empty, PROBE_ID)
    assert show_datagram(b"<a>\x1b[2J\r\n  \x00b</a>" + b"x" * 500).startswith("<a> [2J b</a>xx")
    assert len(show_datagram(b"x" * 10_000)) == 160


def test_hikvision_like_reply() -> None:
    [match] = parse_probe_matches(HIKVISION, PROBE_ID)
    assert match.endpoint == "urn:uuid:54575755-3032-3333-3434-bcbac2a1b2c3"
    assert match.types == ("dn:NetworkVideoTransmitter", "tds:Device")
    assert len(match.xaddrs) == 2
    info = read_scopes(match.scopes)
    assert info.name == "HIKVISION DS-2DE4A425IW-DE"
    assert info.hardware == "DS-2DE4A425IW-DE"
    assert info.location == "hangzhou"
    assert info.manufacturer is None and info.ptz is False
    [device] = build_devices([(match, "192.168.1.64")])
    assert device.address == "192.168.1.64:80"
    assert device.xaddr == "http://192.168.1.64/onvif/device_service"  # not the link-local one
    assert device.slug == "hikvision-ds-2de4a425iw-de"
    assert yaml.safe_load(device.snippet) == [
        {
            "name": "hikvision-ds-2de4a425iw-de",
            "onvif": {
                "host": "192.168.1.64",
                "port": 80,
                "username": "admin",
                "password": "CHANGE-ME",
            },
        }
    ]


def test_axis_like_reply() -> None:
    [match] = parse_probe_matches(AXIS, PROBE_ID)  # uuid: vs urn:uuid: still correlates
    info = read_scopes(match.scopes)
    assert (info.name, info.hardware, info.ptz) == ("AXIS Q6135-LE", "Q6135-LE", True)
    assert info.location == "sweden, lund"
    [device] = build_devices([(match, "10.0.0.21")])
    assert (device.address, device.host, device.port) == ("10.0.0.21:80", "10.0.0.21", 80)
    assert device.xaddrs == match.xaddrs and len(device.xaddrs) == 3
    assert device.to_json()["ptz"] is True


def test_soap11_reply_without_relates_to_and_with_nul_padding() -> None:
    [match] = parse_probe_matches(NO_NAME, PROBE_ID)
    info = read_scopes(match.scopes)
    assert (info.name, info.manufacturer, info.hardware) == ("IPC", "Generic Vision", None)
    [device] = build_devices([(match, "192.168.1.10")])
    assert device.address == "192.168.1.10:8899"
    assert "port: 8899" in device.snippet


def test_ipv6_only_device_gets_a_bracketed_address_and_a_quoted_yaml_host() -> None:
    match = ProbeMatch("urn:uuid:v6", (), (), ("http://[2001:db8::5]:8080/onvif/device_service",))
    [device] = build_devices([(match, "2001:db8::5")])
    assert device.address == "[2001:db8::5]:8080"
    assert device.slug == "camera-2001-db8-5"
    assert yaml.safe_load(device.snippet)[0]["onvif"]["host"] == "2001:db8::5"


def test_xaddr_choice_prefers_the_reply_source_then_ipv4_http() -> None:
    xaddrs = (
        "http://[fe80::1]/onvif/device_service",
        "https://10.0.0.5/onvif/device_service",
        "http://10.0.0.5/onvif/device_service",
        "http://172.16.0.5/onvif/device_service",
    )
    assert pick_xaddr(xaddrs) == "http://10.0.0.5/onvif/device_service"
    assert pick_xaddr(xaddrs, "172.16.0.5") == "http://172.16.0.5/onvif/device_service"
    assert pick_xaddr(xaddrs[:1]) == xaddrs[0]


def test_several_matches_one_device_each_with_unique_names() -> None:
    matches = parse_probe_matches(_nvr(), PROBE_ID)
    assert [m.endpoint for m in matches] == ["urn:uuid:nvr-30", "urn:uuid:nvr-31"]
    # the same reply twice (SOAP-over-UDP repeats) still makes one record per endpoint
    devices = build_devices([(m, "192.168.1.30") for m in matches + matches])
    assert [d.slug for d in devices] == ["yard", "yard-2"]
    assert [d.address for d in devices] == ["192.168.1.30:80", "192.168.1.31:80"]


def test_replies_to_someone_elses_probe_and_other_messages_are_ignored() -> None:
    assert (
        parse_probe_matches(_nvr("urn:uuid:11111111-2222-3333-4444-555555555555"), PROBE_ID) == []
    )
    hello = (
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        b'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"><s:Body><d:Hello>'
        b"<d:XAddrs>http://192.168.1.9/onvif/device_service</d:XAddrs></d:Hello></s:Body></s:Envelope>"
    )
    assert parse_probe_matches(hello, PROBE_ID) == []


@pytest.mark.parametrize(
    "data",
    [
        b"not xml at all",
        b"",
        b"<a><b></a>",
        b"<html><body>hi</body></html>",
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        b"<s:Envelope xmlns:s='x'><s:Body>&lol2;</s:Body></s:Envelope>",
        b'<!DOCTYPE x SYSTEM "http://evil.example/x.dtd"><x/>',
        b"<s:Envelope xmlns:s='x'>" + b"<a>" * 40 + b"</a>" * 40 + b"</s:Envelope>",
        b"<s:Envelope xmlns:s='x'>" + b"<a/>" * 5000 + b"</s:Envelope>",
        b"<x>" + b" " * 70_000 + b"</x>",
    ],
    ids=[
        "text",
        "empty",
        "malformed",
        "html",
        "billion-laughs",
        "external-dtd",
        "deep",
        "wide",
        "huge",
    ],
)
def test_hostile_or_broken_datagrams_raise_a_parse_error(data: bytes) -> None:
    with pytest.raises(DiscoveryParseError):
        parse_probe_matches(data, PROBE_ID)


def test_junk_inside_a_match_is_bounded_or_dropped() -> None:
    scopes = " ".join(f"onvif://www.onvif.org/x/{n}" for n in range(500))
    data = (
        '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><ProbeMatches>'
        f"<ProbeMatch><Scopes>{scopes}</Scopes><XAddrs>ftp://x/ http://h:99999/ junk</XAddrs>"
        "</ProbeMatch><ProbeMatch><Scopes>onvif://www.onvif.org/name/%00Ev%0Ail%1b</Scopes>"
        "<XAddrs>http://192.0.2.7/onvif/device_service</XAddrs></ProbeMatch>"
        "</ProbeMatches></e:Body></e:Envelope>"
    ).encode()
    [match] = parse_probe_matches(data)  # the first has no usable XAddr
    assert read_scopes(match.scopes).name == "Evil"  # control characters dropped
    [device] = build_devices([(match, "192.0.2.7")])
    assert device.endpoint == "" and device.address == "192.0.2.7:80"


def test_slugs_are_valid_camera_names() -> None:
    assert slugify("HIKVISION DS-2CD2143G0-I") == "hikvision-ds-2cd2143g0-i"
    assert slugify("Caméra d'entrée") == "camera-d-entree"
    assert slugify("相机") == "camera"
    assert len(slugify("x" * 200)) == 64
    assert config_snippet("cam", "10.0.0.2", 80).startswith("- name: cam\n  onvif: {host: 10.0.0.2")


def test_report_lists_devices_and_snippets_or_says_none_found() -> None:
    [match] = parse_probe_matches(AXIS, PROBE_ID)
    result = ProbeResult(build_devices([(match, "10.0.0.21")]), [Source("eth0", "10.0.0.2")])
    text = format_report(result, 3)
    assert "eth0 (10.0.0.2)" in text and "1 device found" in text
    assert "10.0.0.21:80" in text and "AXIS Q6135-LE" in text and "yes" in text
    assert "- name: axis-q6135-le\n  onvif: {host: 10.0.0.21, port: 80" in text
    empty = format_report(ProbeResult([], [Source("eth0", "10.0.0.2")], ["eth0: boom"]), 2)
    assert "No ONVIF devices answered" in empty and "warning: eth0: boom" in empty


def test_api_timeout_parameter() -> None:
    assert _timeout(None) == 3.0
    assert _timeout("0.5") == 0.5
    assert _timeout("60") == 10.0  # capped
    for bad in ("0", "-1", "nan", "inf", "soon"):
        with pytest.raises(ValueError):
            _timeout(bad)


async def test_concurrent_requests_share_one_probe() -> None:
    calls: list[tuple[float, list[str] | None]] = []

    async def fake_probe(timeout: float, interfaces: list[str] | None) -> ProbeResult:
        calls.append((timeout, interfaces))
        await asyncio.sleep(0.05)
        return ProbeResult([], [Source("lo", "127.0.0.1")])

    shared = SharedProbe(fake_probe)
    first = asyncio.create_task(shared.run(1, []))
    await asyncio.sleep(0)
    leaver = asyncio.create_task(shared.run(5, []))
    await asyncio.sleep(0)
    leaver.cancel()  # a client hanging up does not cancel the probe for the others
    results = await asyncio.gather(first, shared.run(2, []), shared.run(1, ["eth0"]))
    assert calls == [(1, None), (1, ["eth0"])]  # the eth0 one waited, then ran alone
    assert results[0] is results[1]
    await shared.run(1, [])  # after it ended, a new request probes again
    assert len(calls) == 3
    await shared.close()

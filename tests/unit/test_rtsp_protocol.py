"""The pure RTSP client protocol: message framing, authentication, SDP, URLs."""

from __future__ import annotations

import base64
import hashlib

import pytest

from gateway.media.accessunit import AccessUnit
from gateway.rtsp.auth import (
    Authenticator,
    choose_challenge,
    digest_response,
    parse_challenges,
)
from gateway.rtsp.message import (
    USER_AGENT,
    Headers,
    InterleavedFrame,
    RtspRequest,
    RtspResponse,
    RtspStreamParser,
    build_interleaved,
    build_request,
)
from gateway.rtsp.sdp import (
    SdpError,
    base_url,
    decode_sprop_parameter_sets,
    find_h264,
    resolve_control,
)
from gateway.rtsp.url import parse_url, redact, strip_credentials
from gateway.sources.rtsp import RtspSource, build_receiver_report
from gateway.sources.rtsp_control import parse_session_header, parse_transport

# --- messages -----------------------------------------------------------------------

SDP_BODY = b"v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
DESCRIBE_REPLY = (
    b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Base: rtsp://cam/live/\r\n"
    b"Content-Type: application/sdp\r\nContent-Length: " + str(len(SDP_BODY)).encode() + b"\r\n\r\n"
) + SDP_BODY


def test_build_request_has_cseq_user_agent_session_and_ends_with_blank_line() -> None:
    data = build_request("PLAY", "rtsp://cam/live/", 5, [("Range", "npt=0.000-")], session="AB12")
    text = data.decode()
    assert text.startswith("PLAY rtsp://cam/live/ RTSP/1.0\r\nCSeq: 5\r\n")
    assert f"User-Agent: {USER_AGENT}\r\n" in text
    assert USER_AGENT.startswith("camgate/")
    assert "Session: AB12\r\n" in text and "Range: npt=0.000-\r\n" in text
    assert text.endswith("\r\n\r\n")


def test_build_request_refuses_header_injection() -> None:
    with pytest.raises(ValueError):
        build_request("OPTIONS", "rtsp://cam/", 1, [("X", "a\r\nEvil: 1")])


def test_parser_reads_a_response_with_body() -> None:
    (message,) = RtspStreamParser().feed(DESCRIBE_REPLY)
    assert isinstance(message, RtspResponse)
    assert (message.status, message.reason, message.cseq, message.ok) == (200, "OK", 2, True)
    assert message.headers.get("content-base") == "rtsp://cam/live/"
    assert message.body == SDP_BODY


def test_parser_handles_any_fragmentation() -> None:
    frame = build_interleaved(0, bytes(range(200)))
    stream = DESCRIBE_REPLY + frame + b"RTSP/1.0 200 OK\r\nCSeq: 3\r\n\r\n" + frame
    for size in (1, 2, 3, 7, 64):
        parser = RtspStreamParser()
        messages = []
        for i in range(0, len(stream), size):
            messages += parser.feed(stream[i : i + size])
        assert [type(m) for m in messages] == [
            RtspResponse, InterleavedFrame, RtspResponse, InterleavedFrame,
        ]  # fmt: skip
        assert isinstance(messages[0], RtspResponse) and messages[0].body == SDP_BODY
        assert messages[1] == InterleavedFrame(0, bytes(range(200)))
        assert parser.buffered == 0


def test_parser_interleaved_frames_on_any_channel_and_empty() -> None:
    data = build_interleaved(3, b"\x81\xc8") + build_interleaved(0, b"")
    assert RtspStreamParser().feed(data) == [
        InterleavedFrame(3, b"\x81\xc8"),
        InterleavedFrame(0, b""),
    ]


def test_parser_reads_requests_from_the_server() -> None:
    (message,) = RtspStreamParser().feed(b"OPTIONS * RTSP/1.0\r\nCSeq: 7\r\n\r\n")
    assert isinstance(message, RtspRequest)
    assert (message.method, message.uri, message.cseq) == ("OPTIONS", "*", 7)


def test_parser_tolerates_bare_lf_stray_crlf_folding_and_missing_reason() -> None:
    data = b'\r\nRTSP/1.0 401\nCSeq: 1\nWWW-Authenticate: Digest realm="x",\n nonce="y"\n\n'
    (message,) = RtspStreamParser().feed(data)
    assert isinstance(message, RtspResponse)
    assert message.status == 401 and message.reason == ""
    assert message.headers.get("WWW-Authenticate") == 'Digest realm="x", nonce="y"'


def test_headers_keep_repeats() -> None:
    headers = Headers([("WWW-Authenticate", "Basic a"), ("www-authenticate", "Digest b")])
    assert headers.get_all("WWW-AUTHENTICATE") == ["Basic a", "Digest b"]
    assert "www-Authenticate" in headers and "Session" not in headers


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x01\x02\x03",
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"RTSP/1.0 abc OK\r\n\r\n",
        b"RTSP/1.0 200 OK\r\nno colon here\r\n\r\n",
        b"RTSP/1.0 200 OK\r\nContent-Length: -5\r\n\r\n",
        b"lowercase garbage",
        b"THISISNOTAMETHODBECAUSEITISFARTOOLONGTOBEONE",
    ],
)
def test_parser_raises_value_error_on_garbage(garbage: bytes) -> None:
    with pytest.raises(ValueError):
        RtspStreamParser().feed(garbage)


def test_parser_bounds_header_and_body() -> None:
    with pytest.raises(ValueError, match="too large"):
        RtspStreamParser(max_header_bytes=100).feed(b"RTSP/1.0 200 OK\r\nX: " + b"a" * 200)
    with pytest.raises(ValueError, match="over the limit"):
        RtspStreamParser(max_body_bytes=10).feed(b"RTSP/1.0 200 OK\r\nContent-Length: 11\r\n\r\n")


# --- auth ---------------------------------------------------------------------------


def test_digest_rfc2617_example() -> None:
    # RFC 2617 section 3.5
    response = digest_response(
        username="Mufasa", password="Circle Of Life", realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", method="GET", uri="/dir/index.html",
        qop="auth", nc="00000001", cnonce="0a4f113b",
    )  # fmt: skip
    assert response == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_digest_rfc7616_examples(algorithm: str, expected: str) -> None:
    # RFC 7616 section 3.9.1
    response = digest_response(
        username="Mufasa", password="Circle of Life", realm="http-auth@example.org",
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", method="GET",
        uri="/dir/index.html", algorithm=algorithm, qop="auth", nc="00000001",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )  # fmt: skip
    assert response == expected


def test_digest_without_qop_is_rfc2069() -> None:
    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1, ha2 = md5("admin:IP Camera:12345"), md5("DESCRIBE:rtsp://cam/Streaming/Channels/101")
    response = digest_response(
        username="admin", password="12345", realm="IP Camera", nonce="abc",
        method="DESCRIBE", uri="rtsp://cam/Streaming/Channels/101",
    )  # fmt: skip
    assert response == md5(f"{ha1}:abc:{ha2}")


def test_parse_several_challenges_in_one_and_several_headers() -> None:
    challenges = parse_challenges(
        ['Basic realm="cam", Digest realm="cam", nonce="n1", qop="auth,auth-int", stale=FALSE',
         'Digest realm="cam", nonce="n2", algorithm=SHA-256']
    )  # fmt: skip
    assert [c.scheme for c in challenges] == ["basic", "digest", "digest"]
    assert challenges[1].params == {
        "realm": "cam", "nonce": "n1", "qop": "auth,auth-int", "stale": "FALSE",
    }  # fmt: skip
    assert choose_challenge(challenges) is challenges[1]  # Digest over Basic, server's order


def test_authenticator_prefers_digest_and_counts_nonce_uses() -> None:
    auth = Authenticator("admin", "pa ss")
    assert auth.authorization("OPTIONS", "rtsp://cam/") is None
    assert auth.update(['Basic realm="cam"', 'Digest realm="cam", nonce="n", qop="auth"'])
    first = auth.authorization("DESCRIBE", "rtsp://cam/s")
    second = auth.authorization("SETUP", "rtsp://cam/s/track1")
    assert first is not None and second is not None
    assert first.startswith("Digest ") and 'username="admin"' in first
    assert 'uri="rtsp://cam/s"' in first and "qop=auth" in first
    assert "nc=00000001" in first and "nc=00000002" in second
    assert "pa ss" not in first and "pa ss" not in repr(auth)


def test_authenticator_basic_and_unsupported() -> None:
    auth = Authenticator("admin", "secret")
    assert auth.update(['Basic realm="cam"'])
    expected = base64.b64encode(b"admin:secret").decode()
    assert auth.authorization("DESCRIBE", "rtsp://cam/") == f"Basic {expected}"
    assert not Authenticator("a", "b").update(['Digest realm="x", nonce="n", algorithm=SHA-512'])
    assert not Authenticator("a", "b").update(["Negotiate abc=="])


def test_authenticator_digest_header_matches_independent_computation() -> None:
    auth = Authenticator("admin", "secret")
    auth.update(['Digest realm="r", nonce="n", opaque="o"'])
    header = auth.authorization("PLAY", "rtsp://cam/s/")
    assert header is not None
    fields = dict(item.split("=", 1) for item in header[len("Digest ") :].split(", "))
    expected = digest_response(
        username="admin", password="secret", realm="r", nonce="n", method="PLAY",
        uri="rtsp://cam/s/",
    )  # fmt: skip
    assert fields["response"] == f'"{expected}"' and fields["opaque"] == '"o"'
    assert "qop" not in fields and "algorithm" not in fields


# --- SDP ----------------------------------------------------------------------------

SPS = bytes.fromhex("6742c01e8c8d40a02fd000f08846a0")
PPS = bytes.fromhex("68ce3c80")
SPROP = f"{base64.b64encode(SPS).decode()},{base64.b64encode(PPS).decode()}"

HIKVISION_SDP = f"""v=0
o=- 1109162014219182 1109162014219192 IN IP4 192.168.1.64
s=Media Presentation
e=NONE
b=AS:5050
t=0 0
a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/?transportmode=unicast
m=video 0 RTP/AVP 96
c=IN IP4 0.0.0.0
b=AS:5000
a=recvonly
a=x-dimensions:1920,1080
a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1?transportmode=unicast
a=rtpmap:96 H264/90000
a=fmtp:96 profile-level-id=420029; packetization-mode=1; sprop-parameter-sets={SPROP}
m=audio 0 RTP/AVP 8
c=IN IP4 0.0.0.0
a=recvonly
a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=2?transportmode=unicast
a=rtpmap:8 PCMA/8000
a=Media_header:MEDIAINFO=494D4B48010100000400010000000000000000000000000000000000;
a=appversion:1.0
""".replace("\n", "\r\n")

DAHUA_SDP = f"""v=0
o=- 2251938202 2251938202 IN IP4 0.0.0.0
s=Media Server
c=IN IP4 0.0.0.0
t=0 0
a=control:*
a=packetization-supported:DH
a=rtppayload-supported:DH
a=range:npt=now-
m=video 0 RTP/AVP 96
a=control:trackID=0
a=framerate:25.000000
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1;profile-level-id=4D002A;sprop-parameter-sets={SPROP}
a=recvonly
m=audio 0 RTP/AVP 8
a=control:trackID=1
a=rtpmap:8 PCMA/8000
a=recvonly
"""

GSTREAMER_SDP = f"""v=0
o=- 1188340656180883 1 IN IP4 127.0.0.1
s=Session streamed with GStreamer
t=0 0
a=tool:GStreamer
a=type:broadcast
a=control:*
a=range:npt=now-
m=video 0 RTP/AVP 96
c=IN IP4 127.0.0.1
a=rtpmap:96 H264/90000
a=framerate:30
a=fmtp:96 packetization-mode=1;sprop-parameter-sets={SPROP};profile-level-id=42c01e
a=control:stream=0
a=ts-refclk:local
a=mediaclk:sender
"""

H265_ONLY_SDP = """v=0
o=- 0 0 IN IP4 0.0.0.0
s=Reolink
t=0 0
m=video 0 RTP/AVP 96
a=control:trackID=1
a=rtpmap:96 H265/90000
a=fmtp:96 sprop-vps=QAEMAf//AWAAAAMAAAMAAAMAAAMAlqwJ
m=audio 0 RTP/AVP 97
a=control:trackID=2
a=rtpmap:97 MPEG4-GENERIC/16000
"""

MJPEG_SDP = "v=0\ns=cam\nt=0 0\nm=video 0 RTP/AVP 26\na=control:track1\n"


def test_hikvision_sdp_absolute_controls() -> None:
    stream = find_h264(HIKVISION_SDP, "rtsp://192.168.1.64:554/Streaming/Channels/101")
    assert stream.payload_type == 96 and stream.clock_rate == 90000
    assert stream.control_url == (
        "rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1?transportmode=unicast"
    )
    assert stream.aggregate_url == (
        "rtsp://192.168.1.64:554/Streaming/Channels/101/?transportmode=unicast"
    )
    assert stream.packetization_mode == 1 and stream.profile_level_id == "420029"
    assert stream.parameter_sets == (SPS, PPS)


def test_dahua_sdp_relative_control_against_content_base() -> None:
    headers = Headers([("Content-Base", "rtsp://10.0.0.5:554/cam/realmonitor?channel=1/")])
    base = base_url(headers, "rtsp://10.0.0.5:554/cam/realmonitor?channel=1")
    stream = find_h264(DAHUA_SDP, base)
    assert stream.control_url == "rtsp://10.0.0.5:554/cam/realmonitor?channel=1/trackID=0"
    assert stream.aggregate_url == "rtsp://10.0.0.5:554/cam/realmonitor?channel=1/"  # control:*
    assert stream.profile_level_id == "4d002a"


def test_gstreamer_sdp_and_base_precedence() -> None:
    request_url = "rtsp://127.0.0.1:8554/cam"
    no_base = find_h264(GSTREAMER_SDP, base_url(Headers(), request_url))
    assert no_base.control_url == "rtsp://127.0.0.1:8554/cam/stream=0"  # appended, not merged
    location = Headers([("Content-Location", "rtsp://127.0.0.1:8554/other/")])
    assert base_url(location, request_url) == "rtsp://127.0.0.1:8554/other/"
    both = Headers([("Content-Location", "rtsp://x/loc/"), ("Content-Base", "rtsp://x/base/")])
    assert base_url(both, request_url) == "rtsp://x/base/"


@pytest.mark.parametrize(
    ("base", "control", "expected"),
    [
        ("rtsp://cam/live/", "trackID=1", "rtsp://cam/live/trackID=1"),
        ("rtsp://cam/live", "trackID=1", "rtsp://cam/live/trackID=1"),
        ("rtsp://cam/live/", "/trackID=1", "rtsp://cam/live/trackID=1"),
        ("rtsp://cam/live/", "*", "rtsp://cam/live/"),
        ("rtsp://cam/live/", None, "rtsp://cam/live/"),
        ("rtsp://cam/live/", "rtsp://other:8554/x/track", "rtsp://other:8554/x/track"),
        ("rtsp://cam/live/", "rtsp://rtsp://cam/x/t", "rtsp://cam/x/t"),  # firmware bug
    ],
)
def test_resolve_control(base: str, control: str | None, expected: str) -> None:
    assert resolve_control(base, control) == expected


def test_content_base_quirks_are_repaired() -> None:
    assert base_url(Headers([("Content-Base", "rtsp://rtsp://cam/s/")]), "x") == "rtsp://cam/s/"
    assert (
        base_url(Headers([("Content-Base", "10.0.0.9:1935/s/")]), "x") == "rtsp://10.0.0.9:1935/s/"
    )


def test_h265_only_camera_is_a_clear_error() -> None:
    with pytest.raises(SdpError, match=r"no H\.264") as info:
        find_h264(H265_ONLY_SDP, "rtsp://cam/")
    assert "H265 video" in str(info.value) and "MPEG4-GENERIC audio" in str(info.value)
    assert info.value.offers == ["H265 video", "MPEG4-GENERIC audio"]


def test_mjpeg_static_payload_is_named() -> None:
    with pytest.raises(SdpError, match=r"MJPEG"):
        find_h264(MJPEG_SDP, "rtsp://cam/")
    with pytest.raises(SdpError, match="no media at all"):
        find_h264("v=0\r\n", "rtsp://cam/")


def test_fmtp_under_the_wrong_media_is_found() -> None:
    sdp = (
        "v=0\nm=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\na=control:v\n"
        f"m=audio 0 RTP/AVP 0\na=fmtp:96 packetization-mode=1;sprop-parameter-sets={SPROP}\n"
    )
    stream = find_h264(sdp, "rtsp://cam/s")
    assert stream.parameter_sets == (SPS, PPS) and stream.packetization_mode == 1


def test_sprop_decoding_is_lenient() -> None:
    unpadded = base64.b64encode(SPS).decode().rstrip("=")
    start_coded = base64.b64encode(b"\x00\x00\x00\x01" + PPS).decode()
    sei = base64.b64encode(b"\x06\x05\x01\x00").decode()
    assert decode_sprop_parameter_sets(f" {unpadded} ,{start_coded},{sei},!!!,") == (SPS, PPS)


# --- URLs ---------------------------------------------------------------------------


def test_parse_url_with_percent_encoded_credentials() -> None:
    url = parse_url("rtsp://ad%40min:p%3Ass@cam.local:8554/stream1?x=1")
    assert (url.scheme, url.host, url.port, url.path) == ("rtsp", "cam.local", 8554, "/stream1?x=1")
    assert (url.username, url.password) == ("ad@min", "p:ss")
    assert url.public == "rtsp://cam.local:8554/stream1?x=1"
    assert "p:ss" not in repr(url) and "p%3Ass" not in str(url)


def test_parse_url_defaults_ipv6_and_unescaped_password() -> None:
    assert parse_url("rtsp://cam").port == 554 and parse_url("rtsp://cam").path == "/"
    secure = parse_url("RTSPS://[fe80::1]/s")
    assert (secure.tls, secure.host, secure.port, secure.netloc) == (
        True,
        "fe80::1",
        322,
        "[fe80::1]:322",
    )
    messy = parse_url("rtsp://admin:p@ss/w#rd@192.168.1.10/Streaming/Channels/101")
    assert (messy.password, messy.host, messy.path) == (
        "p@ss/w#rd",
        "192.168.1.10",
        "/Streaming/Channels/101",
    )
    assert messy.public == "rtsp://192.168.1.10/Streaming/Channels/101"


@pytest.mark.parametrize(
    "bad",
    ["http://cam/", "cam/stream", "rtsp://", "rtsp://cam:99999/", "rtsp://[::1/x", "rtsp://:554/"],
)
def test_parse_url_rejects_without_echoing(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_url(bad.replace("cam", "user:hunter2@cam"))
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://admin:hunter2@cam:554/s", "rtsp://cam:554/s"),
        ("rtsps://admin@cam/s", "rtsps://cam/s"),
        ("rtsp://admin:hun@ter2@cam/s", "rtsp://cam/s"),
        ("rtsp://cam/s", "rtsp://cam/s"),
        ("rtsp://cam/user=admin_password=hunter2_channel=1.sdp", "rtsp://cam/user=admin_password=***_channel=1.sdp"),
        ("rtsp://cam/live?user=a&pwd=hunter2&ch=1", "rtsp://cam/live?user=a&pwd=***&ch=1"),
        ("not a url admin:hunter2@cam", "cam"),
    ],
)  # fmt: skip
def test_redact(url: str, expected: str) -> None:
    assert redact(url) == expected


def test_strip_credentials_keeps_the_rest_verbatim() -> None:
    assert strip_credentials("rtsp://u:p@cam/live?pwd=x") == "rtsp://cam/live?pwd=x"
    assert strip_credentials("rtsp://cam:554/a/") == "rtsp://cam:554/a/"


def test_redirect_keeps_credentials_for_the_same_host_only() -> None:
    url = parse_url("rtsp://admin:secret@cam/old")
    same = url.with_location("rtsp://cam:8554/new")
    assert (same.username, same.password, same.port) == ("admin", "secret", 8554)
    other = url.with_location("rtsp://elsewhere/new")
    assert other.username is None and other.password is None


# --- source helpers -------------------------------------------------------------------


def test_session_and_transport_headers() -> None:
    session = parse_session_header("7116520596809429228;timeout=30")
    assert (session.id, session.timeout) == ("7116520596809429228", 30.0)
    assert parse_session_header("ABC").timeout == 60.0
    params = parse_transport("RTP/AVP/UDP;unicast;client_port=49292-49293;server_port=43670-43671")
    assert params["server_port"] == "43670-43671" and params["unicast"] == ""
    assert (
        parse_transport("RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=10117CB7")["interleaved"] == "2-3"
    )


def test_receiver_report_layout() -> None:
    report = build_receiver_report(0x11111111, 0x22222222, 12, 5, 70000)
    assert report[0] == 0x81 and report[1] == 201  # RR with one report block
    rr_len = (int.from_bytes(report[2:4], "big") + 1) * 4
    assert rr_len == 32
    assert report[8:12] == bytes.fromhex("22222222")
    assert report[12] == 12 and int.from_bytes(report[13:16], "big") == 5
    assert int.from_bytes(report[16:20], "big") == 70000
    sdes = report[rr_len:]
    assert sdes[1] == 202 and (int.from_bytes(sdes[2:4], "big") + 1) * 4 == len(sdes)
    assert len(report) % 4 == 0
    empty = build_receiver_report(1, None, 0, 0, 0)
    assert empty[0] == 0x80 and int.from_bytes(empty[2:4], "big") == 1


def _rtp(seq: int, ts: int = 0, marker: bool = True, ssrc: int = 7) -> bytes:
    header = bytes([0x80, (0x80 if marker else 0) | 96]) + seq.to_bytes(2, "big")
    return header + ts.to_bytes(4, "big") + ssrc.to_bytes(4, "big") + b"\x65\x88\x80"


def test_sequence_tracking_counts_losses_and_drops_late_packets() -> None:
    source = RtspSource("rtsp://user:hunter2@cam/s")
    assert "hunter2" not in source.description and source.request_keyframe() is False
    units: list[AccessUnit] = []
    source._reset_stream_state(96, units.append)
    for seq, ts in [(65534, 0), (65535, 3000), (0, 6000), (3, 9000), (2, 12000), (3, 15000)]:
        source._on_rtp(_rtp(seq, ts))
    assert source.packets_lost == 2  # 1 and 2 were missing when 3 came
    assert source.packets_received == 6
    assert source._highest_seq == 65536 + 3  # extended across the wrap
    # 3 opens a picture cleanly (first_mb_in_slice 0) so it survives the loss; the late
    # 2 and the duplicate 3 are dropped
    assert [u.pts for u in units] == [0, 3000, 6000, 9000]
    source._on_rtp(_rtp(9, 18000, ssrc=8))  # new SSRC: a restart, not a loss
    assert source.packets_lost == 2
    source._on_rtp(b"\x00garbage")
    assert source.packets_received == 7

"""Hypothesis against every parser that reads what the outside world sends: camera bytes
(RTP, H.264, RTSP, SDP, Digest challenges), browser bodies (SDP offers, trickle fragments),
and the config file. Property: nothing but the parser's documented, handled error.
(PTZ commands and MQTT payloads are fuzzed beside their parsers' other tests.)"""

from __future__ import annotations

import contextlib
import string

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.config import ConfigError, parse_config
from gateway.media.accessunit import AccessUnit
from gateway.media.assembler import AccessUnitAssembler
from gateway.media.h264 import (
    first_mb_in_slice,
    parse_sei_user_data_unregistered,
    parse_sps,
    pps_id,
    slice_type,
    split_annexb,
)
from gateway.media.normalizer import StreamNormalizer
from gateway.media.rtp_h264 import H264Depacketizer, parse_rtp
from gateway.rtsp.auth import choose_challenge, parse_challenges
from gateway.rtsp.message import RtspStreamParser
from gateway.rtsp.sdp import SdpError, find_h264, parse_sdp
from gateway.webrtc.sdpfrag import FragmentError, parse_sdpfrag
from gateway.webrtc.session import OfferError, validate_offer

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))

# Bytes that look like H.264 often enough to get past the first checks.
nal_like = st.one_of(
    st.binary(max_size=64),
    st.builds(
        lambda head, body: bytes([head]) + body,
        st.sampled_from([0x67, 0x68, 0x65, 0x41, 0x06, 0x7C, 0x78, 0x27]),
        st.binary(max_size=64),
    ),
)
sdp_lines = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "v=0",
                "m=video 9 UDP/TLS/RTP/SAVPF 96",
                "m=video 0 RTP/AVP 96",
                "a=rtpmap:96 H264/90000",
                "a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0IAHpWoKA9k,aM48gA==",
                "a=fmtp:96 sprop-parameter-sets=!!!,",
                "a=control:trackID=1",
                "a=ice-ufrag:abcd",
                "a=ice-pwd:0123456789012345678901",
                "a=mid:0",
                "a=candidate:1 1 udp 1 127.0.0.1 9 typ host",
                "a=end-of-candidates",
                "a=fingerprint:sha-256 00",
                "a=setup:actpass",
                "a=recvonly",
                "c=IN IP4 0.0.0.0",
            ]
        ),
        st.text(alphabet=string.printable, max_size=80),
    ),
    max_size=25,
).map("\r\n".join)


@FUZZ
@given(st.binary(max_size=200))
def test_rtp_packets(data: bytes) -> None:
    try:
        packet = parse_rtp(data)
    except ValueError:
        return
    H264Depacketizer().push(packet.payload)


@FUZZ
@given(
    st.lists(
        st.tuples(st.binary(max_size=120), st.integers(0, 2**32 - 1), st.booleans()), max_size=40
    )
)
def test_depacketizer_assembler_and_normalizer_take_any_stream(
    packets: list[tuple[bytes, int, bool]],
) -> None:
    depacketizer, assembler, normalizer = (
        H264Depacketizer(),
        AccessUnitAssembler(),
        StreamNormalizer(),
    )
    for payload, timestamp, marker in packets:
        for unit in assembler.push(depacketizer.push(payload), timestamp, marker):
            normalizer.process(unit)


@FUZZ
@given(st.lists(nal_like, min_size=1, max_size=6), st.booleans())
def test_normalizer_takes_any_access_unit(nals: list[bytes], keyframe: bool) -> None:
    normalizer = StreamNormalizer()
    normalizer.process(AccessUnit(tuple(n for n in nals if n), 0, keyframe, 0.0))
    _ = normalizer.info


@FUZZ
@given(nal_like)
@example(b"\x67\x42\x00\x1f\xff\xff\xff\xff")
def test_h264_nal_parsers(nal: bytes) -> None:
    for parse in (parse_sps, pps_id):
        with contextlib.suppress(ValueError):
            parse(nal)
    first_mb_in_slice(nal)
    slice_type(nal)
    with contextlib.suppress(ValueError):
        parse_sei_user_data_unregistered(nal)


@FUZZ
@given(st.binary(max_size=300))
def test_annexb_splitting(data: bytes) -> None:
    for nal in split_annexb(data):
        assert nal and not nal.endswith(b"\x00")


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=8))
@example([b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 99999999999\r\n\r\n"])
@example([b"$\x00\xff\xff" + b"x" * 10])
def test_rtsp_stream_parser(chunks: list[bytes]) -> None:
    parser = RtspStreamParser(max_header_bytes=1024, max_body_bytes=4096)
    try:
        for chunk in chunks:
            parser.feed(chunk)
    except ValueError:
        return


@FUZZ
@given(st.lists(st.text(max_size=120), max_size=4))
@example(['Digest realm="x", nonce="y", algorithm=SHA-256, qop="auth,auth-int"'])
@example(['Digest realm="unterminated'])
def test_digest_challenges(values: list[str]) -> None:
    challenges = parse_challenges(values)
    choose_challenge(challenges)


@FUZZ
@given(sdp_lines)
def test_camera_sdp(text: str) -> None:
    parse_sdp(text)
    with contextlib.suppress(SdpError):
        find_h264(text, "rtsp://127.0.0.1/cam/")


@FUZZ
@given(sdp_lines)
def test_browser_offers(text: str) -> None:
    with contextlib.suppress(OfferError):
        validate_offer(text)


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "a=ice-ufrag:abcd",
                    "a=ice-pwd:x",
                    "a=mid:0",
                    "m=video 9 UDP/TLS/RTP/SAVPF 0",
                    "a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host",
                    "a=candidate:1 1 udp x 127.0.0.1 y typ host",
                    "a=end-of-candidates",
                ]
            ),
            st.text(max_size=60),
        ),
        max_size=12,
    ).map("\r\n".join)
)
def test_trickle_fragments(body: str) -> None:
    with contextlib.suppress(FragmentError):
        parse_sdpfrag(body)


yaml_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**6), 10**6),
        st.floats(allow_nan=True),
        st.text(max_size=30),
        st.sampled_from(["demo", "picamera", "rtsp://u:p@h/x", "self-signed", "0.0.0.0:1"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "cameras",
                        "name",
                        "source",
                        "listen",
                        "mqtt",
                        "host",
                        "auth",
                        "tls",
                        "onvif",
                        "picamera",
                        "demo",
                        "ptz",
                        "webrtc",
                        "candidates",
                        "state_dir",
                        "rotation",
                        "width",
                        "topic_prefix",
                        "admin_password",
                        "ice_servers",
                    ]
                ),
                st.text(max_size=10),
            ),
            children,
            max_size=5,
        ),
    ),
    max_leaves=25,
)


@FUZZ
@given(yaml_values)
def test_config_structures(data: object) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(yaml.safe_dump(data))


@FUZZ
@given(st.text(max_size=300))
@example("cameras: [{name: a, source: demo}]\nmqtt: {host: h, port: .nan}")
@example("cameras: &a [*a]")
def test_config_text(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(text)

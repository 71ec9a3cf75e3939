"""The gateway <-> send worker protocol: what is written is read back, and anything else
is a ProtocolError, never another exception."""

from __future__ import annotations

import contextlib
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.fanout.protocol import (
    FRAME,
    NACK,
    PROBE,
    SEND,
    STATS,
    MessageReader,
    ProtocolError,
    Stats,
    ViewerSpec,
    add_viewer_datagram,
    frame_message,
    nack_message,
    parse_control,
    parse_frame,
    parse_gone,
    parse_nack,
    parse_probe,
    parse_send,
    parse_stats,
    probe_message,
    remove_viewer_datagram,
    send_message,
    stats_message,
)

SPEC = ViewerSpec(
    viewer=7,
    family=socket.AF_INET6,
    address=("::1", 40000),
    header=bytes(range(24)),
    abs_send_time_offset=17,
    ssrc=0xDEADBEEF,
    payload_type=102,
    sequence=65535,
    rtx_payload_type=None,
    rtx_ssrc=0,
    rtx_sequence=3,
    srtp_profile=1,
    srtp_key=bytes(30),
)


def test_messages_survive_any_split_of_the_stream() -> None:
    payloads = [b"\x7c\x85" + bytes(1200), b"", b"\x18" * 3]
    stats = Stats(7, 1, 2, 3, 4, 5, 2**32 - 1, 2**64 - 1, 65535)
    stream = (
        frame_message(2**40, payloads)
        + send_message(7, 2**40, 90_000)
        + nack_message(7, 65535)
        + stats_message(stats)
        + probe_message(7, 2**32 - 1)
    )
    for step in (1, 7, 1000, len(stream)):
        reader = MessageReader()
        got = [m for i in range(0, len(stream), step) for m in reader.feed(stream[i : i + step])]
        assert [kind for kind, _ in got] == [FRAME, SEND, NACK, STATS, PROBE]
        assert parse_frame(got[0][1]) == (2**40, payloads)
        assert parse_send(got[1][1]) == (7, 2**40, 90_000)
        assert parse_nack(got[2][1]) == (7, 65535)
        assert parse_stats(got[3][1]) == stats
        assert parse_probe(got[4][1]) == (7, 2**32 - 1)


def test_control_round_trip_and_no_key_in_repr() -> None:
    assert parse_control(add_viewer_datagram(SPEC)) == ("add", SPEC)
    assert parse_control(remove_viewer_datagram(9)) == ("remove", 9)
    assert "key" not in repr(SPEC).lower().replace("srtp_key", "")
    assert bytes(30).hex() not in repr(SPEC)


def test_an_oversized_message_is_refused() -> None:
    with pytest.raises(ProtocolError):
        list(MessageReader().feed(bytes([FRAME]) + (2**31).to_bytes(4, "big")))


@given(st.binary(max_size=300))
def test_junk_bodies_are_protocol_errors(body: bytes) -> None:
    for parse in (
        parse_frame,
        parse_send,
        parse_nack,
        parse_stats,
        parse_gone,
        parse_control,
        parse_probe,
    ):
        with contextlib.suppress(ProtocolError):
            parse(body)


@given(st.lists(st.binary(max_size=64), max_size=20))
def test_junk_streams_split_or_fail_cleanly(chunks: list[bytes]) -> None:
    reader = MessageReader()
    try:
        for chunk in chunks:
            for kind, body in reader.feed(chunk):
                assert 0 <= kind <= 255 and isinstance(body, bytes)
    except ProtocolError:
        pass

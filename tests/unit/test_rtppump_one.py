"""RtpPump.send_one (an audio packet to one listener, the least Python per packet): the
same packets on the wire as send_frame, through a real sendmmsg batch and libsrtp."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from pylibsrtp import Policy, Session

from gateway.sendpath.rtppump import HISTORY_SIZE, RtpPump, abs_send_time, ntp_now
from gateway.sendpath.udpbatch import batch_sender

KEY = bytes(range(30))
# 12-byte RTP header + a one-byte header extension block holding abs-send-time (id 2).
HEADER = bytes([0x90, 111, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE, 0xDE, 0, 1, 0x22, 0, 0, 0])
ABS_OFFSET = 17


@pytest.fixture
def sink() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        yield sock


def _pump(sink: socket.socket, out: socket.socket, *, batched: bool, marker_last: bool) -> RtpPump:
    pump = RtpPump(
        header=HEADER,
        abs_send_time_offset=ABS_OFFSET,
        ssrc=0x01020304,
        payload_type=111,
        sequence=65534,  # wraps
        marker_last=marker_last,
    )
    batch = batch_sender() if batched else None
    if batch is not None:
        assert batch.aim(socket.AF_INET, sink.getsockname())
    address = sink.getsockname()
    pump.connect(
        Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND)),
        lambda data: out.sendto(data, address),
        batch=batch,
        fd=out.fileno(),
    )
    return pump


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("marker_last", [False, True])
def test_send_one_sends_what_send_frame_sends(
    sink: socket.socket, batched: bool, marker_last: bool
) -> None:
    receiver = Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        pump = _pump(sink, out, batched=batched, marker_last=marker_last)
        ntp = ntp_now()
        pump.send_one(b"opus-1", 960, ntp, abs_send_time(ntp))
        pump.send_frame([b"opus-2"], 1920)
        pump.send_one(b"opus-3", 2880, ntp, abs_send_time(ntp))
        packets = [receiver.unprotect(sink.recv(2048)) for _ in range(3)]
    assert [p[:1] for p in packets] == [HEADER[:1]] * 3
    assert [p[1] for p in packets] == [(0x80 if marker_last else 0) | 111] * 3
    assert [int.from_bytes(p[2:4], "big") for p in packets] == [65534, 65535, 0]
    assert [int.from_bytes(p[4:8], "big") for p in packets] == [960, 1920, 2880]
    assert {p[8:12] for p in packets} == {bytes([1, 2, 3, 4])}
    if batched:  # the caller's time (without a batch, send_frame takes its own)
        assert packets[0][ABS_OFFSET : ABS_OFFSET + 3] == abs_send_time(ntp)
    assert [p[len(HEADER) :] for p in packets] == [b"opus-1", b"opus-2", b"opus-3"]
    assert (pump.sent_packets, pump.octets, pump.rtp_timestamp) == (3, 18, 2880)
    assert pump.batched_packets == (3 if batched else 0)
    # NACKs are answered from the same history.
    assert pump.history[65534 % HISTORY_SIZE] == (65534, 960, marker_last, b"opus-1")


def test_send_one_on_a_closed_socket_raises(sink: socket.socket) -> None:
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pump = _pump(sink, out, batched=True, marker_last=False)
    out.close()
    with pytest.raises(OSError):
        pump.send_one(b"x", 960, 0, b"\0\0\0")


def test_without_nack_send_one_keeps_no_history(sink: socket.socket) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        pump = _pump(sink, out, batched=True, marker_last=False)
        pump.keep_history = False  # as for a viewer that negotiated no NACK (audio)
        pump.send_one(b"opus", 960, 0, b"\0\0\0")
        assert sink.recv(2048)
    assert pump.history == {} and not pump.retransmit(65534)

"""sendmmsg batches: what goes in the slots arrives, in order, at the right address."""

from __future__ import annotations

import os
import socket

import pytest

from gateway.sendpath.udpbatch import SLOT_SIZE, BatchSender, batch_sender, sockaddr


def _sender(capacity: int = 8) -> BatchSender:
    batch = batch_sender(capacity)
    assert batch is not None, "this Linux libc has sendmmsg"
    return batch


def _fill(batch: BatchSender, datagrams: list[bytes]) -> None:
    for slot, data in enumerate(datagrams):
        start = slot * SLOT_SIZE
        batch.view[start : start + len(data)] = data
        batch.set_length(slot, len(data))


@pytest.mark.parametrize(
    ("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
)
def test_a_batch_arrives_whole_and_in_order(family: int, host: str) -> None:
    with (
        socket.socket(family, socket.SOCK_DGRAM) as sink,
        socket.socket(family, socket.SOCK_DGRAM) as out,
    ):
        sink.bind((host, 0))
        sink.settimeout(5)
        batch = _sender()
        assert batch.aim(family, sink.getsockname())
        datagrams = [os.urandom(n) for n in (1, 200, 1234, 1500, 12, 999)]
        _fill(batch, datagrams)
        assert batch.send(out.fileno(), len(datagrams)) == len(datagrams)
        assert [sink.recv(2048) for _ in datagrams] == datagrams
        assert batch.datagram(2) == datagrams[2]


def test_only_the_first_count_slots_are_sent() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out,
    ):
        sink.bind(("127.0.0.1", 0))
        batch = _sender()
        batch.aim(socket.AF_INET, sink.getsockname())
        _fill(batch, [b"a", b"b", b"c"])
        assert batch.send(out.fileno(), 2) == 2
        sink.settimeout(5)
        assert [sink.recv(16), sink.recv(16)] == [b"a", b"b"]
        sink.setblocking(False)
        with pytest.raises(BlockingIOError):
            sink.recv(16)


def test_a_dead_socket_is_an_error_not_a_silent_loss() -> None:
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fd = out.fileno()
    out.close()
    batch = _sender()
    batch.aim(socket.AF_INET, ("127.0.0.1", 9))
    _fill(batch, [b"x"])
    with pytest.raises(OSError):
        batch.send(fd, 1)


def test_sockaddr_layouts() -> None:
    v4 = sockaddr(socket.AF_INET, ("127.0.0.2", 0x1234))
    assert v4 is not None and len(v4) == 16
    assert v4[2:4] == b"\x12\x34" and v4[4:8] == bytes([127, 0, 0, 2])
    v6 = sockaddr(socket.AF_INET6, ("::1", 5004))
    assert v6 is not None and len(v6) == 28
    assert v6[2:4] == (5004).to_bytes(2, "big") and v6[8:24] == socket.inet_pton(
        socket.AF_INET6, "::1"
    )
    assert int.from_bytes(v4[0:2], "little") == socket.AF_INET


@pytest.mark.parametrize(
    "address", [("camgate.local", 5004), ("not an address", 1), ("127.0.0.1", "x")]
)
def test_what_is_not_a_numeric_address_is_refused(address: tuple[str, object]) -> None:
    assert sockaddr(socket.AF_INET, address) is None
    batch = _sender()
    assert not batch.aim(socket.AF_INET, address)
    assert batch.destination is None

"""When each frame's last RTP packet left the gateway: a packet tap on `lo`.

SRTP encrypts payloads but not RTP headers, so a packet socket on the loopback sees
every sender's (SSRC, RTP timestamp, marker) with a kernel timestamp taken as the packet
is sent. Joined with the receivers' (SSRC, RTP timestamp) -> camera send stamp, that
gives camera send -> gateway send without the receivers' own processing time.

A classic BPF filter keeps only RTP v2 packets with the marker bit and a dynamic
payload type (RTCP, STUN and DTLS never match), so userspace sees ~30 packets/s/viewer.

    python -m bench.wiretap     JSON lines on stdin/stdout, like bench.receivers:
    {"cmd": "start"} -> {"event": "started"}
    {"cmd": "stop"}  -> {"event": "window", "frames": [[ssrc, rtp_timestamp, wire_ns], ...]}
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import socket
import struct
import sys
import threading

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
PACKET_OUTGOING = 4  # on lo every packet is seen twice: keep the sending side
SNAP = 96

# (code, jt, jf, k); offsets from the IPv4 header (SOCK_DGRAM strips the link header).
_BPF = [
    (0x30, 0, 0, 9),  # ldb [9]                 IP protocol
    (0x15, 0, 10, 17),  # jeq #17 (UDP)
    (0x28, 0, 0, 6),  # ldh [6]                 flags + fragment offset
    (0x45, 8, 0, 0x1FFF),  # jset #0x1fff -> drop   (non-first fragment)
    (0xB1, 0, 0, 0),  # ldxb 4*([0]&0xf)        X = IP header length
    (0x50, 0, 0, 8),  # ldb [x+8]               RTP byte 0
    (0x54, 0, 0, 0xC0),  # and #0xc0
    (0x15, 0, 4, 0x80),  # jeq #0x80 (version 2)
    (0x50, 0, 0, 9),  # ldb [x+9]               RTP byte 1: marker | payload type
    (0x45, 0, 2, 0x80),  # jset #0x80 (marker)
    (0x54, 0, 0, 0x7F),  # and #0x7f
    (0x35, 1, 0, 96),  # jge #96 -> accept
    (0x06, 0, 0, 0),  # drop: ret #0
    (0x06, 0, 0, SNAP),  # accept: ret #SNAP
]
_RTP_IDS = struct.Struct("!II")  # timestamp, SSRC (RTP header bytes 4..12)


def _attach_filter(sock: socket.socket) -> None:
    program = b"".join(struct.pack("HBBI", *insn) for insn in _BPF)
    raw = ctypes.create_string_buffer(program, len(program))  # copied by the kernel
    fprog = struct.pack("HL", len(_BPF), ctypes.addressof(raw))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def open_tap(interface: str = "lo") -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    _attach_filter(sock)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind((interface, 0))
    return sock


class Tap(threading.Thread):
    """Reads the tap in a thread; `frames` collects (ssrc, rtp_ts, wire_ns) while recording."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(name="wiretap", daemon=True)
        self._sock = sock
        self._lock = threading.Lock()
        self.recording = False
        self.frames: list[tuple[int, int, int]] = []

    def take(self) -> list[tuple[int, int, int]]:
        with self._lock:
            frames, self.frames = self.frames, []
        return frames

    def run(self) -> None:
        ancillary = socket.CMSG_SPACE(16)
        while True:
            data, ancdata, _flags, address = self._sock.recvmsg(SNAP, ancillary)
            if address[2] != PACKET_OUTGOING or not self.recording:
                continue
            wire_ns = next(
                (
                    sec * 1_000_000_000 + nsec
                    for level, kind, value in ancdata
                    if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS
                    for sec, nsec in [struct.unpack("qq", value[:16])]
                ),
                None,
            )
            rtp = 4 * (data[0] & 0x0F) + 8  # IP header + UDP header
            if wire_ns is None or len(data) < rtp + 12:
                continue
            timestamp, ssrc = _RTP_IDS.unpack_from(data, rtp + 4)
            with self._lock:
                self.frames.append((ssrc, timestamp, wire_ns))


async def serve() -> None:
    tap = Tap(open_tap())
    tap.start()
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while line := await stdin.readline():
        cmd = json.loads(line).get("cmd")
        if cmd == "start":
            tap.take()
            tap.recording = True
            reply: dict[str, object] = {"event": "started"}
        elif cmd == "stop":
            tap.recording = False
            reply = {"event": "window", "frames": tap.take()}
        else:
            reply = {"event": "error", "message": f"unknown command {cmd!r}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    asyncio.run(serve())

"""Per-packet, per-viewer cost of sending one RTP packet: aiortc's send loop against
camgate's (gateway/webrtc/fastsend.py), step by step, with real parts (aiortc's RtpPacket
and header extensions, libsrtp through pylibsrtp, camgate's in-place SRTP and sendmmsg
batches, a UDP socket to a loopback sink).

    python -m bench.send_cost [--packets 20000] [--out FILE.json]

Load-independent enough to compare (best of 5 runs of N packets each, in ns per packet);
the harness's CPU curve (`python -m bench --viewers ...`) is the end-to-end number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiortc import clock
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from pylibsrtp import Policy, Session

from gateway.sendpath.rtppump import RtpPump
from gateway.sendpath.udpbatch import batch_sender

PAYLOAD = os.urandom(1180)  # a full FU-A fragment
RUNS = 5
FRAME_PACKETS = 14  # a 1080p30 4 Mbit/s stream's average frame


def srtp_session() -> Session:
    policy = Policy(key=os.urandom(30), ssrc_type=Policy.SSRC_ANY_OUTBOUND)
    policy.allow_repeat_tx = True
    return Session(policy)


def extensions_map() -> HeaderExtensionsMap:
    ext = HeaderExtensionsMap()
    ext.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
                RTCRtpHeaderExtensionParameters(
                    id=2, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
                ),
            ]
        )
    )
    return ext


def best_ns(step: Callable[[int], object], packets: int) -> float:
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter_ns()
        for i in range(packets):
            step(i)
        best = min(best, (time.perf_counter_ns() - start) / packets)
    return round(best, 1)


def measure(packets: int) -> dict[str, Any]:
    ext = extensions_map()
    srtp = srtp_session()
    inplace = srtp_session()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    address = sink.getsockname()
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.setblocking(False)

    def drain() -> None:
        try:
            while True:
                sink.recv(2048)
        except BlockingIOError:
            pass

    def send(data: bytes) -> None:
        try:
            out.sendto(data, address)
        except BlockingIOError:
            drain()

    # aiortc: a packet object per packet, its extensions serialized each time.
    def aiortc_build(i: int) -> bytes:
        packet = RtpPacket(payload_type=102, sequence_number=i & 0xFFFF, timestamp=i)
        packet.ssrc = 1234
        packet.payload = PAYLOAD
        packet.marker = 0
        packet.extensions.abs_send_time = (clock.current_ntp_time() >> 14) & 0x00FFFFFF
        packet.extensions.mid = "0"
        return packet.serialize(ext)

    # camgate: one header template per viewer, patched in place.
    template = RtpPacket(payload_type=102, sequence_number=0, timestamp=0)
    template.ssrc = 1234
    template.extensions.mid = "0"
    template.extensions.abs_send_time = 0
    header = bytearray(template.serialize(ext))
    pack = struct.Struct("!BBHII").pack_into

    def camgate_build(i: int) -> bytes:
        pack(header, 0, header[0], 102, i & 0xFFFF, i, 1234)
        return bytes(header) + PAYLOAD

    built = aiortc_build(1)
    protected = srtp.protect(built)

    # camgate: the send loop's own pump (gateway/sendpath/rtppump.py): each packet built in
    # a C slot, SRTP in place, a frame per sendmmsg.
    batch = batch_sender()
    assert batch is not None, "sendmmsg is missing"
    batch.aim(socket.AF_INET, address)
    pump = RtpPump(
        header=bytes(header),
        abs_send_time_offset=None,
        ssrc=1234,
        payload_type=102,
        sequence=0,
    )
    pump.connect(inplace, lambda _data: None, batch=batch, fd=out.fileno())
    frame = [PAYLOAD] * FRAME_PACKETS

    def camgate_frame(i: int) -> None:
        if i % FRAME_PACKETS == 0:
            pump.send_frame(frame, i)
            if i % 1400 == 0:
                drain()

    steps = {
        "aiortc: build + serialize RtpPacket": best_ns(aiortc_build, packets),
        "camgate: patch header template": best_ns(camgate_build, packets),
        "SRTP protect (libsrtp)": best_ns(lambda _i: srtp.protect(built), packets),
        "sendto (UDP, loopback)": best_ns(lambda _i: send(protected), packets),
        "camgate: RtpPump, in place + sendmmsg": best_ns(camgate_frame, packets),
    }

    # aiortc's send goes through three coroutine layers (DTLS, ICE transport, aioice).
    async def layers() -> float:
        async def ice(data: bytes) -> None:
            send(data)

        async def ice_transport(data: bytes) -> None:
            await ice(data)

        async def dtls(data: bytes) -> None:
            await ice_transport(srtp.protect(data))

        best = float("inf")
        for _ in range(RUNS):
            start = time.perf_counter_ns()
            for _i in range(packets):
                await dtls(built)
            best = min(best, (time.perf_counter_ns() - start) / packets)
        return best

    steps["aiortc: protect + send through 3 awaits"] = round(asyncio.run(layers()), 1)
    drain()
    sink.close()
    out.close()
    aiortc_total = (
        steps["aiortc: build + serialize RtpPacket"]
        + steps["aiortc: protect + send through 3 awaits"]
    )
    bytes_total = (
        steps["camgate: patch header template"]
        + steps["SRTP protect (libsrtp)"]
        + steps["sendto (UDP, loopback)"]
    )
    return {
        "packets": packets,
        "ns_per_packet": steps,
        "aiortc_total_ns": round(aiortc_total, 1),
        "bytes_path_total_ns": round(bytes_total, 1),
        "camgate_total_ns": steps["camgate: RtpPump, in place + sendmmsg"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.send_cost", description=__doc__)
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=Path("bench-send-cost.json"))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    result = measure(args.packets)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for step, ns in result["ns_per_packet"].items():
        print(f"{step:42} {ns / 1000:7.2f} us")
    print(f"{'per packet per viewer: aiortc':42} {result['aiortc_total_ns'] / 1000:7.2f} us")
    bytes_us = result["bytes_path_total_ns"] / 1000
    print(f"{'  camgate with bytes and sendto per packet':42} {bytes_us:7.2f} us")
    print(f"{'per packet per viewer: camgate':42} {result['camgate_total_ns'] / 1000:7.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())

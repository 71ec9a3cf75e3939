"""A send worker: sends viewers' RTP for the gateway, on a core of its own.

    python -m gateway.fanout.worker --data-fd N --control-fd M   (started by the gateway)

The gateway keeps everything else of a viewer's connection (ICE, DTLS, RTCP, the data
channel); a worker gets each viewer's UDP socket and SRTP key, each frame's payloads once,
and per viewer which frame to send when. It exits when the gateway closes the stream.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections import OrderedDict

from gateway.fanout.protocol import (
    FRAME,
    MAX_CONTROL_BYTES,
    NACK,
    PROBE,
    SEND,
    MessageReader,
    ProtocolError,
    Stats,
    ViewerSpec,
    gone_message,
    parse_control,
    parse_frame,
    parse_nack,
    parse_probe,
    parse_send,
    stats_message,
)
from gateway.sendpath.rtppump import RtpPump, Rtx
from gateway.sendpath.srtp_keys import SrtpKey
from gateway.sendpath.udpbatch import batch_sender

log = logging.getLogger("camgate.worker")

FRAMES_KEPT = 256  # more than the gateway's record of what each worker has
STATS_INTERVAL_S = 0.5
READ_SIZE = 1 << 18


class WorkerViewer:
    """One viewer's pump, sending on (a duplicate of) the viewer's own UDP socket."""

    def __init__(self, spec: ViewerSpec, fd: int) -> None:
        self.spec = spec
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(False)
        self.dropped = 0  # packets the socket had no room for
        self.reported: tuple[int, int] | None = None
        self.pump = RtpPump(
            header=spec.header,
            abs_send_time_offset=spec.abs_send_time_offset,
            ssrc=spec.ssrc,
            payload_type=spec.payload_type,
            sequence=spec.sequence,
            rtx=None
            if spec.rtx_payload_type is None
            else Rtx(spec.rtx_payload_type, spec.rtx_ssrc),
            rtx_sequence=spec.rtx_sequence,
            marker_last=spec.marker_last,
        )
        batch = batch_sender()
        if batch is not None and not batch.aim(spec.family, spec.address):
            batch = None
        self.pump.connect(
            SrtpKey(spec.srtp_profile, spec.srtp_key).sending_session(),
            self._send_datagram,
            batch=batch,
            fd=self.sock.fileno(),
        )

    def _send_datagram(self, data: bytes) -> None:
        try:
            self.sock.sendto(data, self.spec.address)
        except (BlockingIOError, InterruptedError):
            # No queue here: a live frame late is a frame lost; the viewer NACKs it.
            self.dropped += 1

    def stats(self) -> Stats:
        pump = self.pump
        return Stats(
            viewer=self.spec.viewer,
            sent_packets=pump.sent_packets,
            batched_packets=pump.batched_packets,
            octets=pump.octets,
            retransmitted=pump.retransmitted,
            dropped=self.dropped,
            rtp_timestamp=pump.rtp_timestamp,
            ntp_timestamp=pump.ntp_timestamp,
            sequence=pump.sequence,
        )

    def close(self) -> None:
        self.sock.close()  # our duplicate only: the gateway's socket stays open


class Worker:
    def __init__(self, control: socket.socket, writer: asyncio.StreamWriter) -> None:
        self.control = control
        self.writer = writer
        self.frames: OrderedDict[int, list[bytes]] = OrderedDict()
        self.viewers: dict[int, WorkerViewer] = {}

    def read_control(self) -> None:
        """Apply every waiting add/remove. Called before each chunk of the stream, so a
        viewer added before its first SEND was written is known when that SEND is read."""
        while True:
            try:
                datagram, fds, _flags, _addr = socket.recv_fds(self.control, MAX_CONTROL_BYTES, 1)
            except (BlockingIOError, InterruptedError):
                return
            if not datagram:
                return
            try:
                op, value = parse_control(datagram)
            except ProtocolError as exc:
                log.error("ignoring a control message: %s", exc)
                for fd in fds:
                    socket.close(fd)
                continue
            if op == "add" and isinstance(value, ViewerSpec):
                self._add(value, fds)
            elif isinstance(value, int):
                self._remove(value)

    def _add(self, spec: ViewerSpec, fds: list[int]) -> None:
        if len(fds) != 1:
            log.error("viewer %d came without its socket", spec.viewer)
            for fd in fds:
                socket.close(fd)
            return
        self._remove(spec.viewer)
        try:
            self.viewers[spec.viewer] = WorkerViewer(spec, fds[0])
        except Exception as exc:  # a bad spec must not stop the other viewers
            socket.close(fds[0])
            log.error("viewer %d: cannot send (%s)", spec.viewer, exc)
            self.writer.write(gone_message(spec.viewer, str(exc)))

    def _remove(self, viewer: int) -> None:
        gone = self.viewers.pop(viewer, None)
        if gone is not None:
            gone.close()

    def handle(self, kind: int, body: bytes) -> None:
        if kind == FRAME:
            frame_id, payloads = parse_frame(body)
            self.frames[frame_id] = payloads
            while len(self.frames) > FRAMES_KEPT:
                self.frames.popitem(last=False)
        elif kind == SEND:
            viewer_id, frame_id, timestamp = parse_send(body)
            viewer = self.viewers.get(viewer_id)
            frame = self.frames.get(frame_id)
            if viewer is None or frame is None:
                return  # removed meanwhile, or (a bug) a frame never sent
            try:
                viewer.pump.send_frame(frame, timestamp)
            except OSError as exc:
                self._remove(viewer_id)
                self.writer.write(gone_message(viewer_id, str(exc)))
        elif kind == NACK:
            viewer_id, sequence = parse_nack(body)
            viewer = self.viewers.get(viewer_id)
            if viewer is not None:
                viewer.pump.retransmit(sequence)
        elif kind == PROBE:
            viewer_id, octets = parse_probe(body)
            viewer = self.viewers.get(viewer_id)
            if viewer is not None:
                viewer.pump.send_probe(octets)
        else:
            raise ProtocolError(f"unknown message type {kind}")

    async def report_stats(self) -> None:
        while True:
            await asyncio.sleep(STATS_INTERVAL_S)
            for viewer in list(self.viewers.values()):
                mark = (viewer.pump.sent_packets, viewer.pump.retransmitted)
                if mark != viewer.reported:
                    viewer.reported = mark
                    self.writer.write(stats_message(viewer.stats()))


async def serve(data: socket.socket, control: socket.socket) -> None:
    reader, writer = await asyncio.open_unix_connection(sock=data, limit=READ_SIZE)
    control.setblocking(False)
    worker = Worker(control, writer)
    stats = asyncio.create_task(worker.report_stats())
    messages = MessageReader()
    try:
        while chunk := await reader.read(READ_SIZE):
            worker.read_control()
            for kind, body in messages.feed(chunk):
                worker.handle(kind, body)
    finally:
        stats.cancel()
        for viewer_id in list(worker.viewers):
            worker._remove(viewer_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.fanout.worker")
    parser.add_argument("--data-fd", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the gateway decides when we stop
    data = socket.socket(fileno=args.data_fd)
    control = socket.socket(fileno=args.control_fd)
    try:
        asyncio.run(serve(data, control))
    except ProtocolError as exc:
        log.error("the gateway sent something unexpected (%s); exiting", exc)
        return 1
    except (ConnectionError, KeyboardInterrupt):
        pass
    finally:
        with contextlib.suppress(OSError):
            control.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

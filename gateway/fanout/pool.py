"""Send worker processes: viewers' RTP sent from more cores than the gateway's one.

With `webrtc.send_workers: N` the gateway starts N worker processes
(gateway/fanout/worker.py). Each connected viewer is handed to the least loaded one: its
UDP socket (passed over a Unix socket), its SRTP key and its RTP header template. The
gateway keeps the viewer's peer connection (ICE, DTLS, RTCP, NACK, PLI, the data channel),
its frame queue and everything else; per frame it sends the payloads once to each worker
that has a viewer of that camera and a 20-byte record per viewer. A worker that dies is
restarted; the viewers it had are closed (their players reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import sys
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gateway.fanout.protocol import (
    GONE,
    STATS,
    MessageReader,
    ProtocolError,
    Stats,
    ViewerSpec,
    add_viewer_datagram,
    frame_message,
    nack_message,
    parse_gone,
    parse_stats,
    probe_message,
    remove_viewer_datagram,
    send_message,
)
from gateway.sendpath.rtppump import PumpGone, RtpPump
from gateway.sendpath.srtp_keys import SrtpKey

log = logging.getLogger("camgate.fanout")

FRAMES_REMEMBERED = 128  # per worker; the worker keeps more (FRAMES_KEPT)
MAX_BACKLOG_BYTES = 16 * 1024 * 1024  # a worker this far behind loses frames, not memory
RESTART_DELAY_S = 1.0
STOP_TIMEOUT_S = 5.0
STREAM_BUFFER_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class WorkerState:
    index: int
    pid: int | None  # None while the worker is down
    viewers: int
    skipped_frames: int  # since the worker started


class RemotePump:
    """A viewer's pump in a worker, as the send loop sees it (gateway/webrtc/fastsend.py)."""

    def __init__(self, link: WorkerLink, viewer: int, sequence: int) -> None:
        self.link = link
        self.viewer = viewer
        self.sequence = sequence
        self.sent_packets = 0
        self.batched_packets = 0
        self.octets = 0
        self.retransmitted = 0
        self.dropped = 0  # packets the worker's socket had no room for
        self.rtp_timestamp = 0
        self.ntp_timestamp = 0
        self.gone: str | None = None  # why the worker gave up on this viewer

    def send_frame(self, payloads: list[bytes], timestamp: int) -> None:
        if self.gone is not None:
            raise PumpGone(self.gone)
        self.link.send(self.viewer, payloads, timestamp)

    def retransmit(self, sequence_number: int) -> bool:
        if self.gone is None:
            self.link.write(nack_message(self.viewer, sequence_number))
        return True

    def send_probe(self, octets: int) -> int:
        """The congestion probe (RtpPump.send_probe), sent by the worker; what it sent
        shows in the viewer's next reports, as for a probe sent here."""
        if self.gone is None:
            self.link.write(probe_message(self.viewer, octets))
        return octets

    def update(self, stats: Stats) -> None:
        self.sent_packets = stats.sent_packets
        self.batched_packets = stats.batched_packets
        self.octets = stats.octets
        self.retransmitted = stats.retransmitted
        self.dropped = stats.dropped
        self.rtp_timestamp = stats.rtp_timestamp
        self.ntp_timestamp = stats.ntp_timestamp
        self.sequence = stats.sequence


class WorkerLink:
    """One worker process and the two sockets to it."""

    def __init__(
        self,
        index: int,
        process: asyncio.subprocess.Process,
        writer: asyncio.StreamWriter,
        reader: asyncio.StreamReader,
        control: socket.socket,
        frame_id: Callable[[list[bytes]], int],
    ) -> None:
        self.index = index
        self.process = process
        self.writer = writer
        self.reader = reader
        self.control = control
        self.frame_id = frame_id
        self.pumps: dict[int, RemotePump] = {}
        self.known_frames: OrderedDict[int, None] = OrderedDict()
        self.pending = bytearray()
        self.alive = True
        self.behind_logged = False
        self.skipped_frames = 0  # frames not sent to a viewer: the worker was far behind

    def write(self, message: bytes) -> None:
        if not self.alive:
            raise PumpGone(f"send worker {self.index} is gone")
        if not self.pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self.pending += message

    def _flush(self) -> None:
        if self.pending and self.alive:
            self.writer.write(bytes(self.pending))
        self.pending.clear()

    def send(self, viewer: int, payloads: list[bytes], timestamp: int) -> None:
        """Queue one frame for one viewer; skipped (and counted) while the worker is too
        far behind."""
        if self.writer.transport.get_write_buffer_size() > MAX_BACKLOG_BYTES:
            self.skipped_frames += 1
            if not self.behind_logged:
                self.behind_logged = True
                log.warning("send worker %d is falling behind: dropping frames", self.index)
            return
        frame = self.frame_id(payloads)
        if frame not in self.known_frames:
            self.write(frame_message(frame, payloads))
            self.known_frames[frame] = None
            if len(self.known_frames) > FRAMES_REMEMBERED:
                self.known_frames.popitem(last=False)
        self.write(send_message(viewer, frame, timestamp))

    def add(self, spec: ViewerSpec, fd: int, pump: RemotePump) -> None:
        if not self.alive:
            raise PumpGone(f"send worker {self.index} is gone")
        self._flush()  # what is queued for others goes first; order does not matter
        try:
            socket.send_fds(self.control, [add_viewer_datagram(spec)], [fd])
        except OSError as exc:
            raise PumpGone(f"send worker {self.index}: {exc}") from None
        self.pumps[spec.viewer] = pump

    def remove(self, viewer: int) -> None:
        if self.pumps.pop(viewer, None) is not None and self.alive:
            with contextlib.suppress(OSError):
                self.control.send(remove_viewer_datagram(viewer))

    async def read_reports(self) -> None:
        messages = MessageReader()
        try:
            while chunk := await self.reader.read(1 << 16):
                for kind, body in messages.feed(chunk):
                    self._report(kind, body)
        except (ConnectionError, ProtocolError) as exc:
            log.error("send worker %d: %s", self.index, exc)
        finally:
            self.alive = False
            for pump in self.pumps.values():
                pump.gone = pump.gone or f"send worker {self.index} stopped"
            self.pumps.clear()

    def _report(self, kind: int, body: bytes) -> None:
        if kind == STATS:
            stats = parse_stats(body)
            pump = self.pumps.get(stats.viewer)
            if pump is not None:
                pump.update(stats)
        elif kind == GONE:
            viewer, reason = parse_gone(body)
            pump = self.pumps.pop(viewer, None)
            if pump is not None:
                log.warning("send worker %d dropped a viewer: %s", self.index, reason)
                pump.gone = reason
        else:
            raise ProtocolError(f"unknown report type {kind}")

    async def stop(self) -> None:
        self.alive = False
        self.writer.close()
        self.control.close()
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


class SendWorkerPool:
    def __init__(self, count: int) -> None:
        self.count = count
        self.links: list[WorkerLink | None] = [None] * count
        self._viewer_ids = itertools.count(1)
        self._frame_ids = itertools.count(1)
        # Payload lists are cached per camera frame, so their identity is the frame's;
        # keeping them referenced here keeps their ids from being reused.
        self._frames: OrderedDict[int, tuple[list[bytes], int]] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._started = asyncio.Event()

    def workers(self) -> list[WorkerState]:
        """Each worker's state, for /metrics."""
        return [
            WorkerState(index, link.process.pid, len(link.pumps), link.skipped_frames)
            if link is not None and link.alive
            else WorkerState(index, None, 0, 0)
            for index, link in enumerate(self.links)
        ]

    @property
    def pids(self) -> list[int]:
        return [link.process.pid for link in self.links if link is not None and link.alive]

    async def start(self) -> None:
        for index in range(self.count):
            self._tasks.append(
                asyncio.create_task(self._supervise(index), name=f"send-worker:{index}")
            )
        await self._started.wait()

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(link.stop() for link in self.links if link is not None))

    async def _supervise(self, index: int) -> None:
        """Run worker `index`, and run it again if it dies."""
        while not self._closing:
            link = None
            try:
                link = await self._spawn(index)
                self.links[index] = link
                if all(self.links):
                    self._started.set()
                await link.read_reports()
            except OSError as exc:
                log.error("send worker %d could not start: %s", index, exc)
            finally:
                if link is not None:
                    await link.stop()
            if not self._closing:
                code = link.process.returncode if link is not None else None
                log.error("send worker %d exited (%s); restarting", index, code)
                self._started.set()  # do not hold up start() forever
                await asyncio.sleep(RESTART_DELAY_S)

    async def _spawn(self, index: int) -> WorkerLink:
        data_here, data_there = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        control_here, control_there = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with contextlib.suppress(OSError):
                data_here.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_BUFFER_BYTES)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway.fanout.worker",
                "--data-fd",
                str(data_there.fileno()),
                "--control-fd",
                str(control_there.fileno()),
                pass_fds=(data_there.fileno(), control_there.fileno()),
            )
        finally:
            data_there.close()
            control_there.close()
        control_here.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=data_here)
        log.info("send worker %d started (pid %d)", index, process.pid)
        return WorkerLink(index, process, writer, reader, control_here, self._frame_id)

    def _frame_id(self, payloads: list[bytes]) -> int:
        entry = self._frames.get(id(payloads))
        if entry is not None and entry[0] is payloads:
            return entry[1]
        frame = next(self._frame_ids)
        self._frames[id(payloads)] = (payloads, frame)
        if len(self._frames) > 4 * FRAMES_REMEMBERED:
            self._frames.popitem(last=False)
        return frame

    def attach(
        self, key: SrtpKey, sock: socket.socket, address: tuple[str, int], template: RtpPump
    ) -> tuple[RemotePump, Callable[[], None]]:
        """Hand a connected viewer to the least loaded worker: the SRTP `key` it sends
        with, its UDP socket and address, its pump's template. Returns the pump and what
        ends it."""
        links = [link for link in self.links if link is not None and link.alive]
        if not links:
            raise PumpGone("no send worker is running")
        link = min(links, key=lambda candidate: len(candidate.pumps))
        rtx = template.rtx
        spec = ViewerSpec(
            viewer=next(self._viewer_ids),
            family=int(sock.family),
            address=(str(address[0]), int(address[1])),
            header=bytes(template.header),
            abs_send_time_offset=template.abs_send_time_offset,
            ssrc=template.ssrc,
            payload_type=template.payload_type,
            sequence=template.sequence,
            rtx_payload_type=rtx.payload_type if rtx else None,
            rtx_ssrc=rtx.ssrc if rtx else 0,
            rtx_sequence=template.rtx_sequence,
            srtp_profile=key.profile,
            srtp_key=key.key_and_salt,
            marker_last=template.marker_last,
        )
        pump = RemotePump(link, spec.viewer, template.sequence)
        link.add(spec, sock.fileno(), pump)
        return pump, lambda: link.remove(spec.viewer)

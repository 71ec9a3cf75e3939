"""The gateway's side of a send worker: a worker too far behind loses frames, counted."""

from __future__ import annotations

import asyncio
import socket

from gateway.fanout.pool import MAX_BACKLOG_BYTES, WorkerLink


async def test_a_worker_too_far_behind_skips_frames_and_counts_them() -> None:
    ours, worker_end = socket.socketpair()  # the worker never reads: its backlog grows
    control, worker_control = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    reader, writer = await asyncio.open_connection(sock=ours)
    link = WorkerLink(0, None, writer, reader, control, frame_id=lambda payloads: 1)  # type: ignore[arg-type]
    try:
        link.send(1, [b"frame"], 0)
        await asyncio.sleep(0)  # the link writes what it queued on the next loop turn
        assert link.skipped_frames == 0 and writer.transport.get_write_buffer_size() == 0
        writer.write(b"\0" * (MAX_BACKLOG_BYTES + 4 * 1024 * 1024))
        assert writer.transport.get_write_buffer_size() > MAX_BACKLOG_BYTES
        link.send(1, [b"frame"], 3000)
        link.send(2, [b"frame"], 3000)
        assert link.skipped_frames == 2 and not link.pending
    finally:
        writer.transport.abort()
        for sock in (worker_end, control, worker_control):
            sock.close()

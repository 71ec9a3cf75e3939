"""A process holding many non-decoding viewers of one WHEP endpoint.

    python -m bench.receivers --whep http://127.0.0.1:8080/api/cameras/bench/whep

Driven by JSON lines on stdin, answering one JSON line each on stdout:
    {"cmd": "add", "count": N, "timeout": S} -> {"event": "added", "viewers": .., "receiving": ..}
    {"cmd": "start"}                          -> {"event": "started"}   (a new window)
    {"cmd": "stop"}                           -> {"event": "window", "viewers": [...],
                                                  "latencies_ms": [...]}
    {"cmd": "close"}                          -> {"event": "closed"}, then exit
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from typing import Any

import aiohttp

from bench.whep_client import WhepViewer, use_loopback_candidates

log = logging.getLogger("bench.receivers")


class Receivers:
    def __init__(self, http: aiohttp.ClientSession, whep_url: str) -> None:
        self._http = http
        self._whep_url = whep_url
        self.viewers: list[WhepViewer] = []

    async def add(self, count: int, timeout: float) -> dict[str, Any]:
        started = time.monotonic()
        new = [WhepViewer(self._http, self._whep_url) for _ in range(count)]
        self.viewers.extend(new)
        results = await asyncio.gather(*(v.connect() for v in new), return_exceptions=True)
        errors = [repr(r) for r in results if isinstance(r, BaseException)]
        deadline = started + timeout
        while time.monotonic() < deadline and not all(v.receiving for v in new):
            await asyncio.sleep(0.05)
        return {
            "event": "added",
            "viewers": len(self.viewers),
            "receiving": sum(v.receiving for v in self.viewers),
            "join_s": round(time.monotonic() - started, 3),
            "errors": errors[:3],
        }

    def start_window(self) -> dict[str, Any]:
        for viewer in self.viewers:
            viewer.counter.reset_window()
        return {"event": "started"}

    def stop_window(self) -> dict[str, Any]:
        windows = [viewer.counter.reset_window() for viewer in self.viewers]
        return {
            "event": "window",
            "viewers": [w.as_dict() for w in windows],
            "latencies_ms": [round(x, 3) for w in windows for x in w.latencies_ms],
            "first_packet_ms": [round(x, 3) for w in windows for x in w.first_packet_ms],
            "stamps": [s for w in windows for s in w.stamps],
        }

    async def close(self) -> dict[str, Any]:
        await asyncio.gather(*(v.close() for v in self.viewers))
        self.viewers.clear()
        return {"event": "closed"}


async def serve(whep_url: str) -> None:
    use_loopback_candidates()
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        receivers = Receivers(http, whep_url)
        try:
            while line := await stdin.readline():
                command = json.loads(line)
                cmd = command.get("cmd")
                if cmd == "add":
                    reply = await receivers.add(int(command["count"]), float(command["timeout"]))
                elif cmd == "start":
                    reply = receivers.start_window()
                elif cmd == "stop":
                    reply = receivers.stop_window()
                elif cmd == "close":
                    reply = await receivers.close()
                else:
                    reply = {"event": "error", "message": f"unknown command {cmd!r}"}
                print(json.dumps(reply), flush=True)
                if cmd == "close":
                    return
        finally:
            await receivers.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="non-decoding WHEP viewers")
    parser.add_argument("--whep", required=True, help="WHEP endpoint URL")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(serve(args.whep))


if __name__ == "__main__":
    main()

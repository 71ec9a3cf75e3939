"""A WHEP viewer in its own process: an independent receiver with its own event loop and
a default socket buffer, as a separate machine's player would be. Prints one JSON line.

    python -m tests.rig.whep_receiver BASE_URL CAMERA FRAMES [TIMEOUT_S] [--on-go]
    -> {"frames": N, "first_keyframe": true, "packets_lost": L, "rtp_packets": P}

--on-go: print "ready" once started (libraries imported) and join only when a line
arrives on stdin, so several receivers join at the same moment without one's start-up
(seconds of imports on a small machine) starving another's socket mid-burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys

from aiortc.stats import RTCInboundRtpStreamStats

from tests.rig.whep_client import WhepViewer


async def receive(base_url: str, camera: str, frames: int, timeout: float) -> dict[str, object]:
    viewer = await WhepViewer(base_url, camera).start()
    try:
        await viewer.wait_frames(frames, timeout)
        report = await viewer.pc.getStats()
        inbound = [s for s in report.values() if isinstance(s, RTCInboundRtpStreamStats)]
        return {
            "frames": viewer.frames_received,
            "first_keyframe": bool(viewer.frames[0].keyframe),
            "packets_lost": sum(s.packetsLost for s in inbound),
            "rtp_packets": viewer.rtp_packets,
        }
    finally:
        await viewer.close()


def act_as_own_machine() -> None:
    """A separate machine's player has CPUs of its own; on this one it competes with the
    gateway, the camera and every other test. A higher priority (root only) keeps its
    socket drained as another machine would, so a loss it counts is the gateway's doing."""
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, -10)


def main(argv: list[str]) -> int:
    act_as_own_machine()
    on_go = "--on-go" in argv
    argv = [a for a in argv if a != "--on-go"]
    base_url, camera, frames = argv[0], argv[1], int(argv[2])
    timeout = float(argv[3]) if len(argv) > 3 else 60.0
    if on_go:
        print("ready", flush=True)
        sys.stdin.readline()
    print(json.dumps(asyncio.run(receive(base_url, camera, frames, timeout))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

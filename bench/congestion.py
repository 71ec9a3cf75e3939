"""A viewer on a slow link: how fast camgate's congestion watch decides, whether it ever
flaps, what its probes cost on a link that stays slow, and what it costs in CPU.

    python -m bench.congestion [--rounds 3] [--clean-minutes 2] [--probe-window 60]
                               [--out FILE.json]

Re-executes itself in a fresh network namespace (root). camgate runs in this process with
a GStreamer RTSP camera (640x360 noise at 25 fps: x264 spends the whole bitrate on it);
one real aiortc viewer runs in its own process behind a shaped link (tests/rig/shaping.py:
a veth pair into a viewer namespace, `tc tbf` on the gateway side). The congestion watch
(gateway/webrtc/congestion.py) is attached to the viewer's video sender with a recording
feed: its verdicts are timed, the stream on the wire is the camera's one stream.

- time to verdict: a ~4 Mbit/s camera, the link limited to 1 Mbit/s after a clean
  warm-up; from `tc` to allow_main(False). Target <= 5 s.
- time to recovery: then the limit lifted; from `tc` to allow_main(True). Target <= 30 s.
- flaps: the same camera on a clean link for --clean-minutes; verdicts counted. Target 0.
- probing on a link that stays slow: a ~500 kbit/s camera (what a sub stream carries)
  behind a link that first can't carry it (300 kbit/s: the verdict comes), then can
  (1 Mbit/s) but can't carry a 4 Mbit/s main; for --probe-window s: probes sent, none
  may pass, and the frames the viewer lost (gaps in the RTP timestamps of the whole
  frames it got). Target < 1 % of frames.
- CPU: the watch's cost per RTCP packet (a receiver report, a REMB) and per tick, timed
  in a loop on a real aiortc sender; per viewer, that at the rates the viewer really sent
  them, against camgate's own CPU per viewer (process CPU with the viewer minus without,
  4 Mbit/s camera). Target <= 10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench.netns import bring_up_loopback, in_private_netns, reexec_in_netns
from bench.stats import summary
from tests.rig.net import free_port

FPS = 25
MAIN_KBPS, SUB_KBPS = 4000, 500
LINK_KBIT = 1000
TARGET_VERDICT_S, TARGET_RECOVERY_S = 5.0, 30.0
TARGET_FRAME_LOSS = 0.01
TARGET_CPU_SHARE = 0.10
WARM_UP_S = 10.0


def _camera(bitrate_kbps: int) -> str:
    from tests.rig.streams import testsrc_h264

    return testsrc_h264(
        width=640, height=360, fps=FPS, gop=2 * FPS, pattern="snow", bitrate_kbps=bitrate_kbps
    )


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Setup:
    """A camera, camgate, the shaped link and one viewer with a watch on its sender."""

    def __init__(self, link: Any, gateway: Any, base_url: str) -> None:
        self.link = link
        self.gateway = gateway
        self.base_url = base_url
        self.viewer: Any = None
        self.feed: Any = None
        self.watch: Any = None

    async def join(self, main_kbps: float | None = None) -> None:
        from gateway.webrtc.congestion import CongestionWatch
        from tests.rig.shaping import RecordingFeed, ShapedViewer

        self.viewer = await ShapedViewer(self.link, self.base_url, "cam", FPS).start()
        await self.viewer.wait("frames", lambda r: r["frames"] >= FPS, 60)
        (session,) = self.gateway.sessions
        sender = next(t.sender for t in session.pc.getTransceivers() if t.kind == "video")
        hub = self.gateway.hubs["cam"]
        self.feed = RecordingFeed()
        self.watch = CongestionWatch(
            sender,
            self.feed,
            main_kbps=(lambda: main_kbps) if main_kbps else lambda: hub.status().bitrate_kbps,
            sub_kbps=lambda: SUB_KBPS,
            probe_sender=lambda: session.send_loop.pump if session.send_loop else None,
        )
        self.watch.start()

    async def leave(self) -> None:
        if self.watch is not None:
            self.watch.close()
        if self.viewer is not None:
            await self.viewer.close()
        self.viewer = self.watch = self.feed = None


@asynccontextmanager
async def _setup(camera_kbps: int, run_dir: Path) -> AsyncIterator[Setup]:
    from gateway.app import Gateway
    from gateway.config import parse_config
    from tests.rig.rtsp import RtspServer
    from tests.rig.shaping import GATEWAY_ADDRESS, shaped_link

    with shaped_link() as link:
        server = RtspServer({"/cam": _camera(camera_kbps)}, None, None)
        await server.start()
        port = free_port()
        config = {
            "listen": f"{GATEWAY_ADDRESS}:{port}",
            "webrtc": {"candidates": {"addresses": [GATEWAY_ADDRESS]}},
            "cameras": [{"name": "cam", "source": server.url("/cam"), "preload": True}],
            "auth": False,
            "state_dir": str(run_dir / f"state-{camera_kbps}"),
        }
        gateway = Gateway.from_config(parse_config(json.dumps(config)))
        await gateway.start()
        setup = Setup(link, gateway, f"http://{GATEWAY_ADDRESS}:{port}")
        try:
            await gateway.hubs["cam"].wait_live(30)
            yield setup
        finally:
            await setup.leave()
            await gateway.stop()
            await server.stop()


async def _verdict_rounds(rounds: int, run_dir: Path) -> dict[str, Any]:
    verdict_s: list[float] = []
    recovery_s: list[float] = []
    probes: list[int] = []
    async with _setup(MAIN_KBPS, run_dir) as setup:
        for _ in range(rounds):
            await setup.join()
            await asyncio.sleep(WARM_UP_S)
            assert setup.feed.calls == [], setup.feed.calls
            setup.link.apply(rate_kbit=LINK_KBIT)
            limited = time.monotonic()
            await setup.feed.wait_call(1, 60)
            verdict_s.append(setup.feed.calls[0][0] - limited)
            await asyncio.sleep(5)  # congested a while longer: the link really was slow
            setup.link.lift()
            lifted = time.monotonic()
            await setup.feed.wait_call(2, 120)
            recovery_s.append(setup.feed.calls[1][0] - lifted)
            probes.append(setup.watch.probes)
            await setup.leave()
    return {"verdict_s": summary(verdict_s), "recovery_s": summary(recovery_s), "probes": probes}


async def _clean_link(minutes: float, run_dir: Path) -> dict[str, Any]:
    async with _setup(MAIN_KBPS, run_dir) as setup:
        idle_start, idle_cpu = time.monotonic(), _cpu_s()
        await asyncio.sleep(20)  # the camera alone: camgate's CPU without a viewer
        idle = (_cpu_s() - idle_cpu) / (time.monotonic() - idle_start)
        await setup.join()
        start, cpu = time.monotonic(), _cpu_s()
        rtcp_start = setup.watch.rtcp_packets
        await asyncio.sleep(minutes * 60)
        seconds = time.monotonic() - start
        busy = (_cpu_s() - cpu) / seconds
        result = {
            "minutes": minutes,
            "verdicts": len(setup.feed.calls),
            "probes": setup.watch.probes,
            "rtcp_packets_per_s": round((setup.watch.rtcp_packets - rtcp_start) / seconds, 2),
            "camgate_cpu_pct_per_viewer": round((busy - idle) * 100, 2),
            "camgate_cpu_pct_idle": round(idle * 100, 2),
            "estimate": setup.watch.estimate_json(),
            "viewer": setup.viewer.latest,
        }
    return result


async def _probing_on_a_slow_link(window_s: float, run_dir: Path) -> dict[str, Any]:
    async with _setup(SUB_KBPS, run_dir) as setup:
        setup.link.apply(rate_kbit=300)  # can't carry even this stream: the verdict comes
        await setup.join(main_kbps=MAIN_KBPS)
        await setup.feed.wait_call(1, 60)
        setup.link.apply(rate_kbit=LINK_KBIT)  # carries this stream, not a main one
        await asyncio.sleep(10)  # what the 300 kbit/s spell broke is mended (keyframe)
        before = dict(setup.viewer.latest)
        probes_before = setup.watch.probes
        await asyncio.sleep(window_s)
        after = dict(setup.viewer.latest)
        frames = after["frames"] - before["frames"]
        lost = after["lost_frames"] - before["lost_frames"]
        return {
            "window_s": window_s,
            "probes": setup.watch.probes - probes_before,
            "wrong_up_switches": sum(1 for _, allowed, _ in setup.feed.calls if allowed),
            "frames": frames,
            "lost_frames": lost,
            "frame_loss": round(lost / max(frames + lost, 1), 4),
            "policy_failures": setup.watch.policy.failures,
        }


async def _cpu_per_packet() -> dict[str, float]:
    """The watch's own work per RTCP packet and per tick, on a real aiortc sender."""
    from aiortc import RTCPeerConnection
    from aiortc.rtp import (
        RTCP_PSFB_APP,
        RtcpPsfbPacket,
        RtcpReceiverInfo,
        RtcpRrPacket,
        pack_remb_fci,
    )

    from gateway.compat import aiortc as aiortc_compat
    from gateway.webrtc.congestion import CongestionWatch
    from tests.rig.shaping import RecordingFeed

    pc = RTCPeerConnection()
    try:
        sender = pc.addTransceiver("video", direction="sendonly").sender
        ssrc = aiortc_compat.ssrc(sender)
        watch = CongestionWatch(
            sender, RecordingFeed(), main_kbps=lambda: MAIN_KBPS, sub_kbps=lambda: SUB_KBPS
        )
        block = RtcpReceiverInfo(
            ssrc=ssrc, fraction_lost=0, packets_lost=0, highest_sequence=0, jitter=90, lsr=0, dlsr=0
        )
        rr = RtcpRrPacket(ssrc=1, reports=[block])
        remb = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(4_000_000, [ssrc])
        )
        n = 20_000
        timings = {}
        for name, step in (
            ("rr", lambda: watch._on_rtcp(rr)),
            ("remb", lambda: watch._on_rtcp(remb)),
            ("tick", lambda: watch._decide(time.monotonic())),
        ):
            start = time.perf_counter()
            for _ in range(n):
                step()
            timings[f"{name}_us"] = round((time.perf_counter() - start) / n * 1e6, 2)
        return timings
    finally:
        await pc.close()


async def measure(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"link_kbit": LINK_KBIT, "main_kbps": MAIN_KBPS, "sub_kbps": SUB_KBPS}
    result["cpu_per_packet"] = await _cpu_per_packet()
    result["verdicts"] = await _verdict_rounds(args.rounds, run_dir)
    result["clean_link"] = await _clean_link(args.clean_minutes, run_dir)
    result["probing"] = await _probing_on_a_slow_link(args.probe_window, run_dir)
    per_packet = result["cpu_per_packet"]
    clean = result["clean_link"]
    # The watch's CPU per viewer: every RTCP packet it saw (RRs and REMBs, timed as the
    # dearer of the two) plus two ticks a second.
    watch_pct = (
        clean["rtcp_packets_per_s"] * max(per_packet["rr_us"], per_packet["remb_us"])
        + 2 * per_packet["tick_us"]
    ) / 1e4
    result["watch_cpu_pct_per_viewer"] = round(watch_pct, 4)
    per_viewer = clean["camgate_cpu_pct_per_viewer"]
    share = round(watch_pct / per_viewer, 4) if per_viewer > 0 else None
    result["watch_share_of_viewer_cpu"] = share
    verdict_p50 = result["verdicts"]["verdict_s"]["p50"]
    recovery_max = result["verdicts"]["recovery_s"]["max"]
    result["targets_met"] = {
        "verdict": verdict_p50 is not None and verdict_p50 <= TARGET_VERDICT_S,
        "recovery": recovery_max is not None and recovery_max <= TARGET_RECOVERY_S,
        "no_flaps": clean["verdicts"] == 0,
        "probe_frame_loss": result["probing"]["frame_loss"] < TARGET_FRAME_LOSS
        and result["probing"]["wrong_up_switches"] == 0,
        "cpu": share is not None and share <= TARGET_CPU_SHARE,
    }
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.congestion")
    parser.add_argument("--rounds", type=int, default=3, help="slow link / lifted rounds")
    parser.add_argument("--clean-minutes", type=float, default=2.0)
    parser.add_argument("--probe-window", type=float, default=60.0, help="seconds")
    parser.add_argument("--out", type=Path, default=Path("bench-congestion.json"))
    args = parser.parse_args(argv)
    if not in_private_netns():
        reexec_in_netns("bench.congestion", argv)
    bring_up_loopback()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("camgate.congestion").setLevel(logging.INFO)
    run_dir = Path(tempfile.mkdtemp(prefix="camgate-congestion-bench-"))
    result = asyncio.run(measure(args, run_dir))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if all(result["targets_met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

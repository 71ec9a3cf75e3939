"""The camera's sound through camgate: what passthrough audio costs per viewer, how long a
packet spends in the gateway, and how well Chromium keeps sound and picture together.

    python -m bench.audio [--viewers 16] [--window 20] [--flashes 20] [--out FILE.json]

Re-executes itself in a fresh network namespace holding only lo (root). camgate runs in
this process with the demo camera (a beep on every whole second, on a one-frame white box:
gateway/sources/demo_audio.py); the viewers run elsewhere:

- CPU per extra audio viewer: N aiortc viewers in a child process (on the rig's CPUs),
  first video only, then video and audio, alternating; camgate's process CPU
  (getrusage: every thread, the demo's encoders included, the same in both) over a
  window of each; (with audio - without) / N. Target <= 0.05 % of a core per viewer.
- Transit through camgate: from the demo's emit (the packet's `arrival`, CLOCK_MONOTONIC,
  in the demo's thread) to the moment the fan-out has handed it to every listener, i.e.
  the last listener's `sendmmsg` returned (`AudioFanout.delivered`); split into the wait
  for the event loop (emit -> the fan-out begins) and the fan-out itself, whose wall time
  per listener is also reported. Target p99 <= 20 ms.
- Transit end to end: from the same emit to the packet's arrival at one viewer's
  receive handler in the child process (same clock), matched by RTP timestamp: camgate's
  part plus the kernel's and the receiver's own scheduling.
- A/V offset in headless Chromium: the viewer page, unmuted with the tile's own button; in
  the page a requestVideoFrameCallback loop reads the white box's brightness (canvas) and
  takes the frame's expectedDisplayTime; an AnalyserNode on the received audio track,
  polled every 2 ms, takes the beep's first loud sample (its place in the analyser's
  buffer, plus the AudioContext's output latency). Offset = beep - flash per second, both
  on performance.now(). Target |p50| <= 80 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.netns import bring_up_loopback, in_private_netns, reexec_in_netns
from bench.procs import RIG_CPUS, Children, venv_python
from bench.stats import summary
from tests.rig.net import free_port

DEMO = {"width": 320, "height": 240, "fps": 15, "bitrate_kbps": 300, "gop_seconds": 2}
TARGET_CPU_PCT = 0.05
TARGET_TRANSIT_P99_MS = 20.0
TARGET_OFFSET_P50_MS = 80.0

# Runs in the page: flash times (rVFC) and beep onsets (AnalyserNode), performance.now().
PAGE_PROBE = """
(camera) => {
  const video = document.querySelector(`video[data-camera="${camera}"]`);
  const out = (window.__av = { flashes: [], beeps: [], outputLatency: 0 });
  const canvas = document.createElement('canvas');
  canvas.width = 8; canvas.height = 8;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  let bright = false;
  const onFrame = (now, meta) => {
    const w = video.videoWidth, h = video.videoHeight;
    if (w && h) {
      ctx.drawImage(video, w - w / 10 - 4, h - h / 10 - 4, 8, 8, 0, 0, 8, 8);
      const px = ctx.getImageData(4, 4, 1, 1).data;
      const isBright = px[0] + px[1] + px[2] > 3 * 128;
      if (isBright && !bright) out.flashes.push(meta.expectedDisplayTime);
      bright = isBright;
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  const stream = video.srcObject;
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 2048;
  context.createMediaStreamSource(new MediaStream(stream.getAudioTracks())).connect(analyser);
  context.resume();
  const buffer = new Float32Array(analyser.fftSize);
  let loud = false; // some sample of the buffer is part of a beep
  setInterval(() => {
    analyser.getFloatTimeDomainData(buffer);
    const now = performance.now();
    out.outputLatency = (context.outputLatency || 0) * 1000;
    // The beep is ~0.25 full scale, the hum 0.01: 0.12 separates them.
    let first = -1;
    for (let i = 0; i < buffer.length; i++) {
      if (Math.abs(buffer[i]) > 0.12) { first = i; break; }
    }
    if (first >= 0 && !loud) {
      const ago = ((buffer.length - first) / context.sampleRate) * 1000;
      out.beeps.push(now - ago + out.outputLatency);
    }
    loud = first >= 0;
  }, 2);
}
"""


# --- the child: N viewers -----------------------------------------------------------------


async def _listeners_main(base_url: str) -> None:
    """JSON lines on stdin: {"add": N, "audio": bool} / {"report": true} / {"close": true}."""
    from tests.rig.audio_viewer import AudioWhepViewer
    from tests.rig.whep_client import WhepViewer

    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    viewers: list[WhepViewer] = []
    try:
        while line := await stdin.readline():
            command = json.loads(line)
            if "add" in command:
                for old in viewers:
                    await old.close()
                viewers = []
                for _ in range(int(command["add"])):
                    if command["audio"]:
                        viewer: WhepViewer = AudioWhepViewer(base_url, "cam", decode_audio=False)
                    else:
                        viewer = WhepViewer(base_url, "cam")
                    viewers.append(await viewer.start())
                for started in viewers:
                    await started.wait_frames(5, timeout=60)
                reply: dict[str, Any] = {"ready": len(viewers)}
            elif "report" in command:
                first = viewers[0]
                records = getattr(first, "audio", [])
                reply = {"audio": [[r.timestamp, r.at, r.payload.hex()] for r in records]}
            else:
                reply = {"closed": True}
            print(json.dumps(reply), flush=True)
            if "close" in command:
                return
    finally:
        for viewer in viewers:
            with contextlib.suppress(Exception):
                await viewer.close()


# --- the measurements ---------------------------------------------------------------------


def _cpu_s() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


async def _cpu_window(seconds: float) -> tuple[float, float]:
    """This process's CPU over `seconds`, user and system, in % of one core."""
    before, started = _cpu_s(), time.monotonic()
    await asyncio.sleep(seconds)
    after, elapsed = _cpu_s(), time.monotonic() - started
    return 100 * (after[0] - before[0]) / elapsed, 100 * (after[1] - before[1]) / elapsed


class _InsideTransit:
    """Per audio packet, from AudioFanout.delivered: its time in camgate."""

    def __init__(self) -> None:
        self.transit_ms: list[float] = []
        self.wait_ms: list[float] = []
        self.per_listener_us: list[float] = []
        self.fanout: Any = None

    def record(self, packet: Any, began: float) -> None:
        now = time.monotonic()
        self.transit_ms.append((now - packet.arrival) * 1000)
        self.wait_ms.append((began - packet.arrival) * 1000)
        listeners = self.fanout.listeners - 1 if self.fanout is not None else 0  # not the tap
        if listeners > 0:
            self.per_listener_us.append((now - began) * 1e6 / listeners)


def _transit_ms(
    emitted: dict[int, tuple[float, str]], received: list[list[Any]], window: tuple[float, float]
) -> list[float]:
    """Emit -> receive per packet; RTP = origin + the camera's timestamp (mod 2**32): the
    origin is the one under which most packets received in the same window carry the
    payload emitted with that timestamp."""
    received = [r for r in received if window[0] + 0.1 <= r[1] <= window[1]]
    if not received:
        return []
    origins: dict[int, int] = {}
    for rtp, _, payload in received[:100]:
        for ts, (_, sent_payload) in emitted.items():
            if sent_payload == payload:
                origin = (int(rtp) - ts) % (1 << 32)
                origins[origin] = origins.get(origin, 0) + 1
    if not origins:
        return []
    origin = max(origins, key=origins.__getitem__)
    out = []
    for rtp, at, payload in received:
        entry = emitted.get((int(rtp) - origin) % (1 << 32))
        if entry is not None and entry[1] == payload:
            out.append((at - entry[0]) * 1000)
    return out


async def measure(viewers: int, window_s: float, flashes: int, run_dir: Path) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    from gateway.app import Gateway
    from gateway.config import parse_config
    from gateway.subscription import SubscriptionClosed
    from tests.rig.browser import launch_chromium

    listen = free_port()
    config = {
        "listen": f"127.0.0.1:{listen}",
        "auth": False,
        "webrtc": {"candidates": {"addresses": ["127.0.0.1"]}},
        "cameras": [{"name": "cam", "source": "demo", "demo": DEMO, "preload": True}],
    }
    gateway = Gateway.from_config(parse_config(json.dumps(config)))
    await gateway.start()
    base_url = f"http://127.0.0.1:{listen}"
    result: dict[str, Any] = {"viewers": viewers, "window_s": window_s, "demo": DEMO}
    try:
        hub = gateway.hubs["cam"]
        await hub.wait_live(30)
        async with Children(run_dir) as children:
            child = await children.spawn(
                "listeners",
                [venv_python(), "-m", "bench.audio", "--listeners", base_url],
                pipe_stdio=True,
                cpus=RIG_CPUS,
            )
            cpu: dict[str, list[tuple[float, float]]] = {"video": [], "video+audio": []}
            transit: list[float] = []
            inside = _InsideTransit()
            inside.fanout = hub.audio
            for _ in range(2):
                for audio in (False, True):
                    await child.send_json({"add": viewers, "audio": audio})
                    await child.read_json(120)
                    await asyncio.sleep(2)  # joins settle
                    emitted: dict[int, tuple[float, str]] = {}
                    tap = hub.subscribe_audio()

                    async def record(sub: Any = tap, into: dict[Any, Any] = emitted) -> None:
                        with contextlib.suppress(SubscriptionClosed):
                            while True:
                                packet = await sub.get()
                                into[packet.timestamp] = (packet.arrival, packet.payload.hex())

                    recorder = asyncio.create_task(record())
                    window_start = time.monotonic()
                    hub.audio.delivered = inside.record if audio else None
                    cpu["video+audio" if audio else "video"].append(await _cpu_window(window_s))
                    hub.audio.delivered = None
                    if audio:
                        await child.send_json({"report": True})
                        received = (await child.read_json(60))["audio"]
                        window = (window_start, time.monotonic())
                        transit += _transit_ms(emitted, received, window)
                    if tap is not None:
                        hub.unsubscribe_audio(tap)
                    recorder.cancel()
            await child.send_json({"close": True})
            await child.read_json(60)
        plain, with_audio = (
            [sum(w[i] for w in v) / len(v) for i in (0, 1)]
            for v in (cpu["video"], cpu["video+audio"])
        )
        per_viewer = (sum(with_audio) - sum(plain)) / viewers
        result["cpu_pct_user_system"] = {
            k: [[round(x, 2) for x in w] for w in v] for k, v in cpu.items()
        }
        result["audio_cpu_pct_per_viewer"] = round(per_viewer, 4)
        result["audio_cpu_pct_per_viewer_user"] = round((with_audio[0] - plain[0]) / viewers, 4)
        result["audio_cpu_pct_per_viewer_system"] = round((with_audio[1] - plain[1]) / viewers, 4)
        result["transit_ms"] = summary(transit)
        result["transit_in_camgate_ms"] = summary(inside.transit_ms)
        result["transit_in_camgate_loop_wait_ms"] = summary(inside.wait_ms)
        result["fanout_us_per_listener"] = summary(inside.per_listener_us)

        async with async_playwright() as playwright:
            browser = await launch_chromium(playwright)
            try:
                # bypass_csp: Playwright evaluates strings, which camgate's CSP forbids.
                context = await browser.new_context(
                    viewport={"width": 1280, "height": 800}, bypass_csp=True
                )
                page = await context.new_page()
                await page.goto(base_url + "/")
                button = page.locator('.tile[data-camera="cam"] .audio-toggle')
                await button.wait_for(state="visible", timeout=60_000)
                await button.click()
                await page.wait_for_function(
                    "document.querySelector('video[data-camera=\"cam\"]')?.srcObject"
                    "?.getAudioTracks().length > 0",
                    timeout=60_000,
                )
                await asyncio.sleep(3)  # jitter buffers and sync settle
                await page.evaluate(PAGE_PROBE, "cam")
                await asyncio.sleep(flashes + 1)
                probe = await page.evaluate("window.__av")
            finally:
                await browser.close()
        offsets = []
        for flash in probe["flashes"]:
            nearest = min(probe["beeps"], key=lambda b: abs(b - flash), default=None)
            if nearest is not None and abs(nearest - flash) < 500:
                offsets.append(nearest - flash)
        result["av_offset_ms"] = summary(offsets)
        result["av_output_latency_ms"] = round(probe["outputLatency"], 2)
        result["flashes_seen"], result["beeps_heard"] = len(probe["flashes"]), len(probe["beeps"])
    finally:
        await gateway.stop()
    offset_p50 = result["av_offset_ms"]["p50"]
    result["targets_met"] = {
        "cpu": result["audio_cpu_pct_per_viewer"] <= TARGET_CPU_PCT,
        "transit": (result["transit_in_camgate_ms"]["p99"] or 1e9) <= TARGET_TRANSIT_P99_MS,
        "av_offset": offset_p50 is not None and abs(offset_p50) <= TARGET_OFFSET_P50_MS,
    }
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.audio")
    parser.add_argument("--viewers", type=int, default=16)
    parser.add_argument("--window", type=float, default=20.0, help="seconds per CPU window")
    parser.add_argument("--flashes", type=int, default=20, help="seconds of A/V in Chromium")
    parser.add_argument("--out", type=Path, default=Path("bench-audio.json"))
    parser.add_argument("--listeners", metavar="BASE_URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.listeners:
        asyncio.run(_listeners_main(args.listeners))
        return 0
    if not in_private_netns():
        reexec_in_netns("bench.audio", argv)
    bring_up_loopback()
    logging.basicConfig(level=logging.WARNING)
    run_dir = Path(tempfile.mkdtemp(prefix="camgate-audio-bench-"))
    result = asyncio.run(measure(args.viewers, args.window, args.flashes, run_dir))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if all(result["targets_met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

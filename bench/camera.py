#!/usr/bin/python3
"""Benchmark camera: GStreamer's RTSP server looping a pre-encoded clip in real time.

Runs under Debian's /usr/bin/python3 (python3-gi, gir1.2-gst-rtsp-server-1.0) with
PYTHONPATH at the repo root. Each frame gets an SEI send stamp (bench.sei) just before
it is pushed into appsrc, so receivers can measure camera-send -> viewer-receive.

    /usr/bin/python3 -m bench.camera --clip CLIP.h264 --port 8554 [--path /cam]

Prints one JSON line {"event": "ready", "url": ...} when listening; exits on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import itertools
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

from bench.sei import make_stamp_nal  # noqa: E402
from gateway.media.h264 import NAL_SEI, nal_type, split_annexb  # noqa: E402

START_CODE = b"\x00\x00\x00\x01"
# A feeder that falls this far behind real time (a stalled machine) resynchronises
# instead of bursting the backlog.
MAX_LAG_S = 0.5

LAUNCH = (
    "( appsrc name=src is-live=true do-timestamp=true format=time block=false "
    "max-bytes=4000000 "
    "caps=video/x-h264,stream-format=byte-stream,alignment=au,framerate={fps}/1 "
    "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
)


class AccessUnitTemplate:
    """One clip frame, split where the stamp SEI goes: before the first slice."""

    def __init__(self, nals: list[bytes]) -> None:
        first_vcl = next(i for i, n in enumerate(nals) if 1 <= nal_type(n) <= 5)
        self.head = b"".join(START_CODE + n for n in nals[:first_vcl])
        self.body = b"".join(START_CODE + n for n in nals[first_vcl:])

    def stamped(self, send_ns: int, index: int) -> bytes:
        return self.head + START_CODE + make_stamp_nal(send_ns, index) + self.body


def load_clip(path: Path) -> list[AccessUnitTemplate]:
    """Annex-B clip -> access units (a new one at a non-VCL NAL or a slice with
    first_mb_in_slice 0 after a slice). The encoder's own SEI is dropped."""
    units: list[list[bytes]] = []
    current: list[bytes] = []
    seen_slice = False
    for nal in split_annexb(path.read_bytes()):
        kind = nal_type(nal)
        if kind == NAL_SEI:
            continue
        is_slice = 1 <= kind <= 5
        first_mb_zero = is_slice and len(nal) > 1 and bool(nal[1] & 0x80)
        if seen_slice and (not is_slice or first_mb_zero):
            units.append(current)
            current, seen_slice = [], False
        current.append(nal)
        seen_slice |= is_slice
    if current:
        units.append(current)
    return [AccessUnitTemplate(u) for u in units]


class Feeder(threading.Thread):
    """Pushes the clip into one media's appsrc at `fps`, forever, until stopped."""

    _indices = itertools.count()  # frame indices never repeat in this process

    def __init__(self, appsrc: Gst.Element, clip: list[AccessUnitTemplate], fps: int) -> None:
        super().__init__(name="feeder", daemon=True)
        self._appsrc = appsrc
        self._clip = clip
        self._interval = 1.0 / fps
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        start = time.monotonic()
        for n in itertools.count():
            due = start + n * self._interval
            delay = due - time.monotonic()
            if delay < -MAX_LAG_S:
                start, delay = time.monotonic() - n * self._interval, 0.0
            if self._stop_event.wait(max(delay, 0.0)):
                return
            unit = self._clip[n % len(self._clip)]
            data = unit.stamped(time.time_ns(), next(self._indices))
            result = self._appsrc.emit("push-buffer", Gst.Buffer.new_wrapped(data))
            if result != Gst.FlowReturn.OK:
                return  # flushing / shutting down


def serve(clip_path: Path, port: int, path: str, fps: int) -> int:
    Gst.init(None)
    clip = load_clip(clip_path)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(LAUNCH.format(fps=fps))
    factory.set_shared(True)

    def on_configure(_factory: GstRtspServer.RTSPMediaFactory, media: Any) -> None:
        appsrc = media.get_element().get_child_by_name("src")
        feeder = Feeder(appsrc, clip, fps)
        media.connect("unprepared", lambda _m: feeder.stop())
        feeder.start()

    factory.connect("media-configure", on_configure)
    server.get_mount_points().add_factory(path, factory)
    if server.attach(None) == 0:
        print(json.dumps({"event": "error", "message": f"cannot listen on {port}"}), flush=True)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    url = f"rtsp://127.0.0.1:{port}{path}"
    print(json.dumps({"event": "ready", "url": url, "frames": len(clip)}), flush=True)
    loop.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--clip", type=Path, required=True)
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args(argv)
    return serve(args.clip, args.port, args.path, args.fps)


if __name__ == "__main__":
    sys.exit(main())

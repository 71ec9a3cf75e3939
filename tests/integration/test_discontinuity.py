"""After an upstream discontinuity no viewer gets a picture that refers to what it missed.

The camera here behaves like a real one: it keeps encoding while camgate's connection is
gone (its media ignores PLAY's Range, so it is never restarted, and a second RTSP client
keeps it playing), with a 5 s GOP. camgate's TCP connection is cut from outside (`ss -K`)
or, over UDP, 1 % of the camera's RTP packets are lost on the way. The viewer, an
aiortc receiver that decodes (FFmpeg through PyAV), must see only pictures it can decode:
after the discontinuity the first picture is an IDR with SPS/PPS, and within every GOP no
picture is missing.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import subprocess

import pytest

from gateway.hub import CameraHub
from gateway.media.accessunit import AccessUnit
from gateway.media.h264 import NAL_IDR, NAL_PPS, NAL_SLICE, NAL_SPS, nal_type, split_annexb
from tests.conftest import RtspServerFactory, WhepViewerFactory
from tests.integration.conftest import GatewayFactory
from tests.rig.rtsp import RtspPlayer, RtspServer
from tests.rig.streams import testsrc_h264
from tests.rig.wait import wait_until
from tests.rig.whep_client import EncodedRecord, WhepViewer

FPS = 30
GOP_FRAMES = 5 * FPS  # 5 s, like the cameras that showed the problem
TICKS_PER_FRAME = 90_000 // FPS
CAMERA = testsrc_h264(width=320, height=240, fps=FPS, gop=GOP_FRAMES, bitrate_kbps=400)


def first_slice(nals: list[bytes] | tuple[bytes, ...]) -> bytes | None:
    return next((n for n in nals if nal_type(n) in (NAL_SLICE, NAL_IDR)), None)


def fingerprint(slice_nal: bytes) -> str:
    return hashlib.sha1(slice_nal[:4096]).hexdigest()


class ConnectionTags:
    """Which upstream connection (0 = first, 1 = after the first reconnect, ...) each
    picture the hub received came from, by a fingerprint of its first slice."""

    def __init__(self, hub: CameraHub) -> None:
        self.of: dict[str, int] = {}
        original = hub._on_unit

        def tagging(unit: AccessUnit) -> None:
            nal = first_slice(unit.nals)
            if nal is not None:
                self.of[fingerprint(nal)] = hub.reconnects
            original(unit)

        hub._on_unit = tagging  # type: ignore[method-assign]

    def connection(self, record: EncodedRecord) -> int | None:
        nal = first_slice(split_annexb(record.data))
        return self.of.get(fingerprint(nal)) if nal is not None else None


def kinds(record: EncodedRecord) -> set[int]:
    return {nal_type(n) for n in split_annexb(record.data)}


def assert_every_gop_whole(frames: list[EncodedRecord]) -> int:
    """Between IDRs, pictures are 1/FPS apart: none missing. Returns the IDR count.
    (The viewer's first GOP came as a join burst, one tick apart: skipped.)"""
    idrs = 0
    for previous, frame in itertools.pairwise(frames):
        if NAL_IDR in kinds(frame):
            idrs += 1
            assert {NAL_SPS, NAL_PPS} <= kinds(frame), "an IDR without its parameter sets"
        elif idrs:
            step = (frame.rtp_timestamp - previous.rtp_timestamp) % (1 << 32)
            assert step == TICKS_PER_FRAME, f"a picture went missing inside a GOP ({step})"
    return idrs


def no_decode_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "decode" in r.getMessage().lower()]


async def keep_playing(server: RtspServer) -> RtspPlayer:
    """A second client, so the shared media (and its encoder) never stops."""
    player = await RtspPlayer(server.url("/cam")).start()
    await server.wait_for(lambda s: s["sessions"] >= 1, timeout=30)
    return player


def cut_gateway_connection(port: int) -> None:
    """Kill camgate's TCP connection to the camera (not the other client's): a dropped
    link, while the camera keeps encoding."""
    listing = subprocess.run(
        ["ss", "-Htnp", "state", "established", "dst", "127.0.0.1", "dport", f"= :{port}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    ours = [line for line in listing.splitlines() if f"pid={os.getpid()}," in line]
    assert len(ours) == 1, listing
    local_port = re.search(r"127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:" + str(port), ours[0])
    assert local_port is not None, ours[0]
    subprocess.run(
        ["ss", "-K", "dst", "127.0.0.1", "dport", f"= :{port}", "sport", f"= :{local_port[1]}"],
        capture_output=True, check=True,
    )  # fmt: skip


async def test_a_reconnect_mid_gop_sends_nothing_until_the_next_idr(
    rtsp_server: RtspServerFactory,
    start_gateway: GatewayFactory,
    whep_viewer: WhepViewerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    server = await rtsp_server({"/cam": CAMERA}, keep_encoding=True)
    player = await keep_playing(server)
    try:
        gw = await start_gateway(
            cameras=[{"name": "cam", "source": server.url("/cam"), "preload": True}]
        )
        hub = gw.hub("cam")
        tags = ConnectionTags(hub)
        await hub.wait_live(30)
        viewer: WhepViewer = await whep_viewer(gw.base_url, "cam", decode=True, keep_encoded=True)
        await viewer.wait_frames(15, timeout=30)

        cut_gateway_connection(server.port)
        await wait_until(lambda: hub.reconnects >= 1, timeout=30)
        # The next IDR comes within a GOP (5 s) of the reconnect; then some more pictures.
        await wait_until(lambda: _after_reconnect(viewer, tags) >= 10, timeout=30)
    finally:
        await player.stop()

    assert hub.frames_held > 0, "the camera restarted its encoder: nothing was tested"
    first = next(r for r in viewer.encoded if (tags.connection(r) or 0) >= 1)
    assert NAL_IDR in kinds(first) and {NAL_SPS, NAL_PPS} <= kinds(first)
    assert assert_every_gop_whole(viewer.encoded) >= 1
    assert viewer.frames_received > 15  # it decoded on after the reconnect
    errors = no_decode_errors(caplog)
    # If it fails: was it RTP lost on the way to this in-process viewer, or a picture?
    assert not errors, (errors[:2], await _receive_report(viewer))
    assert hub.discontinuities >= 1 and hub.status().discontinuities >= 1


async def _receive_report(viewer: WhepViewer) -> dict[str, object]:
    from aiortc.stats import RTCInboundRtpStreamStats

    inbound = [
        s for s in (await viewer.pc.getStats()).values() if isinstance(s, RTCInboundRtpStreamStats)
    ]
    return {"packets_lost": sum(s.packetsLost for s in inbound), "rtp": viewer.rtp_packets}


def _after_reconnect(viewer: WhepViewer, tags: ConnectionTags) -> int:
    return sum(1 for r in viewer.encoded if (tags.connection(r) or 0) >= 1)


async def test_packets_lost_over_udp_send_nothing_until_the_next_idr(
    rtsp_server: RtspServerFactory,
    start_gateway: GatewayFactory,
    whep_viewer: WhepViewerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    # 1 % of the camera's RTP packets lost on the way. (tc netem would be the natural tool,
    # but not every kernel has it; the loss is made right after the payloader instead.)
    lossy = testsrc_h264(width=320, height=240, fps=FPS, gop=GOP_FRAMES, rtp_loss=0.01)
    server = await rtsp_server({"/cam": lossy}, keep_encoding=True)
    camera = {"name": "cam", "source": server.url("/cam"), "transport": "udp", "preload": True}
    gw = await start_gateway(cameras=[camera])
    hub = gw.hub("cam")
    await hub.wait_live(30)
    viewer = await whep_viewer(gw.base_url, "cam", decode=True, keep_encoded=True)
    # Losses come every second or so; an IDR every 5 s ends each hold.
    await wait_until(lambda: hub.discontinuities >= 2 and _idrs(viewer) >= 3, timeout=90)

    assert hub.frames_held > 0
    assert assert_every_gop_whole(viewer.encoded) >= 2
    assert not no_decode_errors(caplog)


def _idrs(viewer: WhepViewer) -> int:
    return sum(1 for r in viewer.encoded if NAL_IDR in kinds(r))

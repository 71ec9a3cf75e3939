"""RtspSource against a real RTSP server (GStreamer's, from the rig) and against a small
scripted fake camera for the quirks a well-behaved server never shows."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import pytest

from gateway.media.accessunit import AccessUnit
from gateway.media.h264 import NAL_IDR, NAL_PPS, NAL_SLICE, NAL_SPS, first_mb_in_slice, nal_type
from gateway.sources import rtsp as rtsp_module
from gateway.sources.base import SourceError
from gateway.sources.rtsp import RtspSource
from tests.conftest import RtspServerFactory
from tests.rig.fake_camera import FAKE_SDP, IDR, FakeCamera
from tests.rig.streams import testsrc_h264

av = pytest.importorskip("av")

Transport = Literal["tcp", "udp"]

WAIT = 20.0  # generous: a loaded CI machine is slow, and nothing here sleeps blindly
WIDTH, HEIGHT, FPS, SLICES = 640, 480, 30, 4


def camera(config_interval: int = -1, slices: int = SLICES) -> dict[str, str]:
    """One mount, /cam; by default its pictures have four slices each (quirk 2)."""
    launch = testsrc_h264(
        width=WIDTH, height=HEIGHT, fps=FPS, gop=30, slices=slices, config_interval=config_interval
    )
    return {"/cam": launch}


# --- helpers ------------------------------------------------------------------------


class Collector:
    """emit() target that lets a test wait for a number of pictures."""

    def __init__(self, source: RtspSource) -> None:
        self.source = source
        self.units: list[AccessUnit] = []
        self.sprop_at_first_unit: list[bytes] | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def __call__(self, unit: AccessUnit) -> None:
        if not self.units:
            self.sprop_at_first_unit = list(self.source.sdp_parameter_sets)
        self.units.append(unit)
        for count, future in self._waiters:
            if len(self.units) >= count and not future.done():
                future.set_result(None)

    async def wait_for(self, count: int, task: asyncio.Task[None]) -> None:
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((count, future))
        if len(self.units) >= count:
            return
        done, _ = await asyncio.wait({future, task}, timeout=WAIT, return_when="FIRST_COMPLETED")
        if task in done:
            task.result()  # raises the SourceError
            pytest.fail("run() returned")
        assert future in done, f"only {len(self.units)} of {count} pictures in {WAIT} s"


@contextlib.asynccontextmanager
async def running(source: RtspSource) -> AsyncIterator[tuple[Collector, asyncio.Task[None]]]:
    collector = Collector(source)
    task = asyncio.create_task(source.run(collector))
    try:
        yield collector, task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, SourceError):
            await task


async def expect_source_error(task: asyncio.Task[None], within: float = WAIT) -> SourceError:
    with pytest.raises(SourceError) as info:
        await asyncio.wait_for(task, within)
    return info.value


def decode_all(
    units: list[AccessUnit], parameter_sets: list[bytes], strip_inband: bool = False
) -> list[tuple[int, int]]:
    """Decode every picture with FFmpeg, one packet per AccessUnit; returns frame sizes."""
    codec = av.CodecContext.create("h264", "r")
    codec.thread_type = "NONE"
    prefix = b"".join(b"\x00\x00\x00\x01" + nal for nal in parameter_sets)
    sizes = []
    for i, unit in enumerate(units):
        nals = [n for n in unit.nals if not strip_inband or nal_type(n) not in (NAL_SPS, NAL_PPS)]
        data = (prefix if i == 0 else b"") + b"".join(b"\x00\x00\x00\x01" + n for n in nals)
        for frame in codec.decode(av.Packet(data)):
            sizes.append((frame.width, frame.height))
    return sizes


# --- against the real server ---------------------------------------------------------


@pytest.mark.rtsp
@pytest.mark.parametrize("transport", ["tcp", "udp"])
@pytest.mark.parametrize(
    ("config_interval", "slices"),
    # x264's sliced threads repeat SPS/PPS in-band whatever rtph264pay does, so the
    # SPS/PPS-only-in-the-SDP camera (quirk 3) is a one-slice one
    [(-1, SLICES), (0, 1)],
    ids=["multi-slice", "sprop-only"],
)
async def test_whole_access_units(
    rtsp_server: RtspServerFactory, transport: Transport, config_interval: int, slices: int
) -> None:
    server = await rtsp_server(camera(config_interval, slices), shared=False)
    source = RtspSource(server.url("/cam"), transport=transport, timeout=5.0)
    async with running(source) as (collector, task):
        await collector.wait_for(45, task)
    units = collector.units[:45]
    # an unshared camera starts each client at an IDR; its SPS/PPS were known from the
    # SDP before the first picture went out
    assert units[0].keyframe
    assert {NAL_SPS, NAL_PPS} <= {nal_type(n) for n in collector.sprop_at_first_unit or []}
    for unit in units:
        # marker-based emission: every slice of a picture in ONE AccessUnit
        picture = [n for n in unit.nals if nal_type(n) in (NAL_SLICE, NAL_IDR)]
        assert len(picture) == slices, [nal_type(n) for n in unit.nals]
        assert first_mb_in_slice(picture[0]) == 0
        assert unit.keyframe == (nal_type(picture[0]) == NAL_IDR)
    # one unit per RTP timestamp, none lost or merged (a live source jitters a little)
    steps = [b.pts - a.pts for a, b in itertools.pairwise(units)]
    assert all(abs(step - 90_000 // FPS) < 300 for step in steps), steps
    # With sprop-only the pictures decode with the SDP's parameter sets alone (the
    # in-band ones are removed, should the encoder have repeated them anyway).
    strip = config_interval == 0
    decoded = decode_all(units, source.sdp_parameter_sets, strip_inband=strip)
    assert decoded == [(WIDTH, HEIGHT)] * len(units)
    assert source.packets_received >= len(units) * slices
    assert source.packets_lost == 0
    assert source.bytes_received > sum(u.size for u in units)


@pytest.mark.rtsp
@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_cancel_sends_teardown(
    rtsp_server: RtspServerFactory, transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="camgate.rtsp")
    server = await rtsp_server(camera())
    source = RtspSource(server.url("/cam"), transport=transport, timeout=5.0)
    async with running(source) as (collector, task):
        await collector.wait_for(3, task)
        assert (await server.status())["sessions"] == 1
    # The rig also drops a session when its connection closes, so the count alone would
    # not prove the TEARDOWN: the camera's answer to it does.
    assert "TEARDOWN answered 200 OK" in caplog.text
    await server.wait_for(lambda status: status["sessions"] == 0 and status["clients"] == 0)


@pytest.mark.rtsp
@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_server_killed_mid_stream(
    rtsp_server: RtspServerFactory, transport: Transport
) -> None:
    server = await rtsp_server(camera())
    source = RtspSource(server.url("/cam"), transport=transport, timeout=3.0)
    async with running(source) as (collector, task):
        await collector.wait_for(3, task)
        await server.stop()
        error = await expect_source_error(task, within=3.0 + 2.0)
    assert "camera" in str(error)


@pytest.mark.rtsp
@pytest.mark.parametrize("auth_method", ["digest", "basic"])
async def test_credentials(
    rtsp_server: RtspServerFactory, auth_method: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="camgate.rtsp")
    server = await rtsp_server(
        camera(), user="viewer", password="s3cr3t:/@ pw", auth_method=auth_method
    )
    url = server.url("/cam")
    assert "%40" in url  # percent-encoded by the rig
    source = RtspSource(url, timeout=5.0)
    assert "s3cr3t" not in source.description and "viewer" not in source.description
    async with running(source) as (collector, task):
        await collector.wait_for(3, task)
    assert "s3cr3t" not in caplog.text


@pytest.mark.rtsp
async def test_wrong_password(
    rtsp_server: RtspServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="camgate.rtsp")
    server = await rtsp_server(camera(), user="viewer", password="s3cr3t")
    source = RtspSource(f"rtsp://viewer:hunter2@127.0.0.1:{server.port}/cam", timeout=5.0)
    error = await expect_source_error(asyncio.create_task(source.run(lambda unit: None)))
    assert "user name or password" in str(error)
    assert "hunter2" not in str(error) and "hunter2" not in caplog.text
    assert (await server.status())["sessions"] == 0


# --- against a scripted fake camera (tests/rig/fake_camera.py) ----------------------


async def test_fake_camera_redirect_channels_and_server_requests() -> None:
    async with FakeCamera(redirect_from="/old") as camera:
        source = RtspSource(f"rtsp://127.0.0.1:{camera.port}/old", timeout=5.0)
        async with running(source) as (collector, task):
            await collector.wait_for(5, task)
        units = collector.units
        assert units[0].keyframe and units[0].nals == (IDR,)  # sent before the PLAY answer
        assert all(len(u.nals) == 2 for u in units[1:])  # two packets, one picture
        methods = [r.method for r in camera.requests]
        assert methods[:2] == ["OPTIONS", "OPTIONS"]  # the redirect, then the new URL
        assert methods[-1] == "TEARDOWN"
        setup = next(r for r in camera.requests if r.method == "SETUP")
        assert setup.uri == f"rtsp://127.0.0.1:{camera.port}/real/trackID=1"
        assert setup.headers.get("Transport") == "RTP/AVP/TCP;unicast;interleaved=0-1"
        play = next(r for r in camera.requests if r.method == "PLAY")
        assert play.headers.get("Session") == "F00D"
        assert (play.headers.get("User-Agent") or "").startswith("camgate/")
        assert source.sdp_parameter_sets[0][0] & 0x1F == NAL_SPS


def self_signed_context(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a throwaway self-signed certificate, as cameras have."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=camera.local", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_fake_camera_rtsps_with_self_signed_certificate(tmp_path: Path) -> None:
    async with FakeCamera(tls=self_signed_context(tmp_path)) as camera:
        source = RtspSource(f"rtsps://127.0.0.1:{camera.port}/cam", timeout=5.0)
        async with running(source) as (collector, task):
            await collector.wait_for(5, task)
    assert [r.method for r in camera.requests][-1] == "TEARDOWN"


async def test_fake_camera_keepalive_and_receiver_reports(monkeypatch) -> None:
    monkeypatch.setattr(rtsp_module, "RTCP_INTERVAL_S", 0.2)
    async with FakeCamera(session_timeout=2) as camera:
        source = RtspSource(f"rtsp://127.0.0.1:{camera.port}/cam", timeout=5.0)
        async with running(source) as (_, task):
            waits = [camera.keepalive_seen.wait(), camera.report_seen.wait()]
            await asyncio.wait_for(asyncio.gather(*waits), WAIT)
            assert not task.done()
    keepalive = next(r for r in camera.requests if r.method == "GET_PARAMETER")
    assert keepalive.headers.get("Session") == "F00D"
    report = camera.client_frames[0]
    assert report.channel == 3  # the RTCP channel the camera chose
    assert report.data[1] == 201 and report.data[8:12] == (1234).to_bytes(4, "big")


async def test_fake_camera_garbage_is_a_source_error() -> None:
    async with FakeCamera(garbage_after_play=True) as camera:
        source = RtspSource(f"rtsp://127.0.0.1:{camera.port}/cam", timeout=5.0)
        error = await expect_source_error(asyncio.create_task(source.run(lambda unit: None)))
    assert "broken RTSP stream" in str(error)


async def test_fake_camera_without_h264() -> None:
    sdp = FAKE_SDP.replace("H264/90000", "H265/90000")
    async with FakeCamera(sdp=sdp) as camera:
        source = RtspSource(f"rtsp://user:pw@127.0.0.1:{camera.port}/cam", timeout=5.0)
        error = await expect_source_error(asyncio.create_task(source.run(lambda unit: None)))
    assert "no H.264" in str(error) and "H265 video" in str(error)


async def test_fake_camera_stall_is_detected() -> None:
    async with FakeCamera(stream=False) as camera:
        source = RtspSource(f"rtsp://127.0.0.1:{camera.port}/cam", timeout=1.0)
        error = await expect_source_error(asyncio.create_task(source.run(lambda unit: None)))
    assert "no video from the camera for 1 s" in str(error)


async def test_unreachable_camera() -> None:
    with contextlib.closing(__import__("socket").socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connection refused
        source = RtspSource(f"rtsp://admin:hunter2@127.0.0.1:{port}/cam", timeout=2.0)
        error = await expect_source_error(asyncio.create_task(source.run(lambda unit: None)))
    assert "cannot connect" in str(error) and "hunter2" not in str(error)
    invalid = RtspSource("http://admin:hunter2@cam/")
    error = await expect_source_error(asyncio.create_task(invalid.run(lambda unit: None)))
    assert "hunter2" not in str(error) and "hunter2" not in invalid.description

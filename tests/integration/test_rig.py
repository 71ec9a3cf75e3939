"""Self-tests of the test rig: if these fail, every other end-to-end test is suspect."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import pytest
from playwright.async_api import Browser

from tests.conftest import MosquittoFactory, RtspServerFactory, WhepViewerFactory
from tests.integration.conftest import GatewayFactory
from tests.rig import prereq
from tests.rig.netns import NetNamespace
from tests.rig.rtsp import RtspServerError
from tests.rig.streams import testsrc_h264

SPS, PPS, IDR, NON_IDR, STAP_A, FU_A = 7, 8, 5, 1, 24, 28


# -- network namespaces -------------------------------------------------------------------
def _thread_netns_inode() -> int:
    return os.stat(f"/proc/self/task/{threading.get_native_id()}/ns/net").st_ino


_seen_namespaces: list[str] = []


def _require_netns(netns: NetNamespace | None) -> NetNamespace:
    if netns is None:
        pytest.skip("network namespaces need root and iproute2")
    return netns


def test_netns_has_only_loopback(netns: NetNamespace | None) -> None:
    _require_netns(netns)
    assert [name for _, name in socket.if_nameindex()] == ["lo"]
    # Child processes and new threads inherit the thread's namespace.
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    assert [line.split(":")[1].strip() for line in links.stdout.splitlines()] == ["lo"]
    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.append(_thread_netns_inode()))
    thread.start()
    thread.join()
    assert seen == [_thread_netns_inode()]


def test_netns_listener_unreachable_from_host(netns: NetNamespace | None) -> None:
    ns = _require_netns(netns)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with ns.host(), socket.socket() as probe:
            probe.settimeout(2)
            # Refused: the host's 127.0.0.1 is another interface in another namespace.
            # (If something on the host happened to hold this port, connect would succeed
            # but then bind below would fail; so check both.)
            with pytest.raises(ConnectionRefusedError):
                probe.connect(("127.0.0.1", port))
        with ns.host(), socket.socket() as same_port:
            same_port.bind(("127.0.0.1", port))  # free there: a separate port space
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # and reachable from inside


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_gets_a_fresh_namespace(netns: NetNamespace | None, run: int) -> None:
    ns = _require_netns(netns)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert ns.name in listed
    # The previous test's namespace was deleted at its teardown.
    assert not any(name in listed for name in _seen_namespaces)
    _seen_namespaces.append(ns.name)


# -- helpers for the RTSP tests -----------------------------------------------------------
async def run(*cmd: str, timeout: float = 30.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def ffprobe(url: str) -> tuple[int, dict[str, object], str]:
    prereq.require_program("ffprobe")
    code, out, err = await run(
        "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_streams", "-of", "json", url
    )
    streams = json.loads(out)["streams"][0] if code == 0 else {}
    return code, streams, err


@dataclass
class Capture:
    """What a minimal RTSP-over-TCP client saw: the SDP and NAL types per RTP timestamp."""

    sdp: str = ""
    nal_types: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    markers: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    packets: int = 0

    def frames(self) -> list[list[int]]:
        """NAL types of each whole picture (its marker bit seen), in arrival order."""
        return [types for ts, types in self.nal_types.items() if self.markers[ts]]

    def idr_frames(self) -> list[list[int]]:
        return [types for types in self.frames() if IDR in types]


def nal_types_of(payload: bytes) -> list[int]:
    """NAL unit types in one H.264 RTP payload (RFC 6184: single NAL, STAP-A, FU-A)."""
    kind = payload[0] & 0x1F
    if kind == STAP_A:
        types, pos = [], 1
        while pos + 2 < len(payload):
            size = int.from_bytes(payload[pos : pos + 2], "big")
            types.append(payload[pos + 2] & 0x1F)
            pos += 2 + size
        return types
    if kind == FU_A:
        return [payload[1] & 0x1F] if payload[1] & 0x80 else []
    return [kind]


async def rtsp_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: str
) -> tuple[int, dict[str, str], str]:
    writer.write(request.encode())
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    status_line, *header_lines = head.strip().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body.decode()


async def rtsp_capture(url: str, enough: int, timeout: float = 15.0) -> Capture:
    """Play `url` over TCP until `enough` IDR pictures have arrived."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    capture = Capture()
    try:
        code, headers, capture.sdp = await rtsp_request(
            reader, writer, f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"
        )
        assert code == 200, code
        control = next(
            line.split(":", 1)[1] for line in capture.sdp.splitlines() if "a=control:stream" in line
        )
        track = urljoin(headers.get("content-base", url + "/"), control)
        transport = "RTP/AVP/TCP;unicast;interleaved=0-1"
        code, headers, _ = await rtsp_request(
            reader, writer, f"SETUP {track} RTSP/1.0\r\nCSeq: 2\r\nTransport: {transport}\r\n\r\n"
        )
        assert code == 200, code
        session = headers["session"].split(";")[0]
        code, _, _ = await rtsp_request(
            reader, writer, f"PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n"
        )
        assert code == 200, code
        async with asyncio.timeout(timeout):
            while len(capture.idr_frames()) < enough:
                await read_interleaved(reader, capture)
    finally:
        writer.close()
    return capture


async def read_interleaved(reader: asyncio.StreamReader, capture: Capture) -> None:
    magic, channel, size_hi, size_lo = await reader.readexactly(4)
    assert magic == ord("$"), "expected an interleaved frame"
    data = await reader.readexactly(size_hi << 8 | size_lo)
    if channel != 0:
        return  # RTCP
    csrc_count, marker = data[0] & 0x0F, data[1] >> 7
    timestamp = int.from_bytes(data[4:8], "big")
    offset = 12 + 4 * csrc_count
    if data[0] & 0x10:  # header extension
        offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
    capture.packets += 1
    capture.nal_types[timestamp] += nal_types_of(data[offset:])
    capture.markers[timestamp] += marker


# -- RTSP camera simulator ----------------------------------------------------------------
async def test_rtsp_server_serves_h264_and_counts_sessions(
    rtsp_server: RtspServerFactory,
) -> None:
    server = await rtsp_server({"/cam": testsrc_h264()})
    assert server.port > 0
    assert await server.status() == {"sessions": 0, "clients": 0}

    code, stream, err = await ffprobe(server.url("/cam"))
    assert code == 0, err
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 640, 360)
    assert stream["profile"] == "Constrained Baseline"

    viewer = await asyncio.create_subprocess_exec(
        "ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", server.url("cam"),
        "-f", "null", "-", stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        status = await server.wait_for(lambda s: s["sessions"] == 1, timeout=20)
        assert status["clients"] == 1
    finally:
        viewer.terminate()
        await viewer.wait()
    # A client that vanishes without TEARDOWN still frees its session promptly.
    await server.wait_for(lambda s: s == {"sessions": 0, "clients": 0}, timeout=5)
    assert server.clients_connected_total == 2


async def test_rtsp_server_restarts_on_same_port(rtsp_server: RtspServerFactory) -> None:
    server = await rtsp_server({"/cam": testsrc_h264(width=320, height=180)})
    port = server.port
    await server.stop()
    with pytest.raises(RtspServerError):
        await server.status()
    code, _, _ = await ffprobe(server.url("/cam"))
    assert code != 0  # the camera is "rebooting"
    await server.start()
    assert server.port == port
    code, stream, err = await ffprobe(server.url("/cam"))
    assert code == 0, err
    assert stream["width"] == 320


@pytest.mark.parametrize("method", ["digest", "basic"])
async def test_rtsp_server_auth(rtsp_server: RtspServerFactory, method: str) -> None:
    server = await rtsp_server(
        {"/cam": testsrc_h264()}, user="admin", password="s3cret:/@", auth_method=method
    )
    assert server.url("/cam") == f"rtsp://admin:s3cret%3A%2F%40@127.0.0.1:{server.port}/cam"
    code, _, err = await ffprobe(server.url("/cam"))
    assert code == 0, err
    code, _, err = await ffprobe(server.url("/cam").replace("s3cret", "wrong"))
    assert code != 0 and "401" in err
    code, _, err = await ffprobe(server.url("/cam", with_credentials=False))
    assert code != 0 and "401" in err
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    describe = f"DESCRIBE {server.url('/cam', with_credentials=False)} RTSP/1.0\r\nCSeq: 1\r\n\r\n"
    code, headers, _ = await rtsp_request(reader, writer, describe)
    writer.close()
    assert code == 401 and headers["www-authenticate"].lower().startswith(method)


async def test_streams_reproduce_camera_quirks(rtsp_server: RtspServerFactory) -> None:
    server = await rtsp_server(
        {
            "/sliced": testsrc_h264(slices=4, gop=15),
            "/sdp-only": testsrc_h264(config_interval=0, gop=15),
        }
    )
    sliced = await rtsp_capture(server.url("/sliced"), enough=2)
    for types in sliced.idr_frames():
        assert types.count(IDR) == 4 and SPS in types and PPS in types
    assert all(t.count(IDR) + t.count(NON_IDR) == 4 for t in sliced.frames())
    assert max(sliced.markers.values()) == 1  # one marker bit per picture

    sdp_only = await rtsp_capture(server.url("/sdp-only"), enough=2)
    sprop = next(line for line in sdp_only.sdp.splitlines() if "sprop-parameter-sets=" in line)
    sets = sprop.split("sprop-parameter-sets=")[1].split(";")[0].split(",")
    assert [base64.b64decode(s)[0] & 0x1F for s in sets] == [SPS, PPS]
    in_band = {t for types in sdp_only.nal_types.values() for t in types}
    assert IDR in in_band and SPS not in in_band and PPS not in in_band


async def test_streams_b_frames_and_profile(rtsp_server: RtspServerFactory) -> None:
    server = await rtsp_server({"/b": testsrc_h264(profile="high", bframes=2)})
    code, stream, err = await ffprobe(server.url("/b"))
    assert code == 0, err
    assert stream["profile"] == "High" and int(str(stream["has_b_frames"])) > 0


async def test_rtsp_server_rejects_bad_launch_string(rtsp_server: RtspServerFactory) -> None:
    with pytest.raises(RtspServerError, match="no element"):
        await rtsp_server({"/cam": "( videotestsrc ! no-such-encoder ! rtph264pay name=pay0 )"})


def test_streams_reject_impossible_settings() -> None:
    with pytest.raises(ValueError):
        testsrc_h264(profile="baseline", bframes=1)
    with pytest.raises(ValueError):
        testsrc_h264(profile="extended")


# -- MQTT broker --------------------------------------------------------------------------
async def test_mosquitto_publish_subscribe_and_restart(mosquitto: MosquittoFactory) -> None:
    prereq.require_program("mosquitto_pub")
    broker = await mosquitto()
    for attempt in ("first", "after restart"):
        common = ["-h", broker.host, "-p", str(broker.port), "-t", "camgate/test"]
        code, _, err = await run("mosquitto_pub", *common, "-r", "-m", attempt)
        assert code == 0, err
        # Retained message: the subscriber gets it whenever it connects.
        code, out, err = await run("mosquitto_sub", *common, "-C", "1", "-W", "10")
        assert (code, out.strip()) == (0, attempt), err
        port = broker.port
        await broker.stop()
        await broker.start()
        assert broker.port == port


# -- Chromium -----------------------------------------------------------------------------
async def test_chromium_opens_data_url(chromium: Browser) -> None:
    page = await chromium.new_page()
    await page.goto("data:text/html,<h1 id=greeting>camgate</h1>")
    assert await page.text_content("#greeting") == "camgate"
    assert await page.evaluate("typeof RTCPeerConnection") == "function"
    await page.close()


# -- WHEP viewer (against the gateway's built-in demo camera) ----------------------------
@pytest.mark.parametrize("decode", [False, True], ids=["counting", "decoding"])
async def test_whep_viewer_receives_frames(
    start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory, decode: bool
) -> None:
    gateway = await start_gateway()
    viewer = await whep_viewer(gateway.base_url, "demo", decode=decode)
    assert viewer.location is not None and "/whep/" in viewer.location
    await viewer.wait_frames(10, timeout=20)
    assert viewer.first_frame_at is not None and viewer.time_to_first_frame is not None
    if decode:
        assert viewer.frames[-1].width and viewer.frames[-1].height
    else:
        assert viewer.frames[0].keyframe, "a new viewer must start on a keyframe"
        assert viewer.rtp_packets >= viewer.frames_received
    await viewer.close()
    assert viewer.location is None


async def test_whep_viewer_stall_and_resume(
    start_gateway: GatewayFactory, whep_viewer: WhepViewerFactory
) -> None:
    gateway = await start_gateway()
    viewer = await whep_viewer(gateway.base_url, "demo")
    await viewer.wait_frames(5, timeout=20)
    viewer.stall()
    stalled_at = viewer.frames_received
    await asyncio.sleep(0.5)  # not synchronisation: nothing may arrive during this time
    assert viewer.frames_received == stalled_at
    viewer.resume()
    await viewer.wait_frames(stalled_at + 10, timeout=20)

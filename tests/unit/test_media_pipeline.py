"""The media chain end to end on real RTP from GStreamer's rtph264pay:
parse_rtp -> H264Depacketizer -> AccessUnitAssembler -> StreamNormalizer -> GopCache,
checked against the encoder's own elementary stream, split and decoded by FFmpeg (PyAV).

The streams are made at test time (a few KB, ~0.1 s each) in a temporary directory.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.media.accessunit import AccessUnit
from gateway.media.assembler import AccessUnitAssembler
from gateway.media.gop import GopCache
from gateway.media.h264 import NAL_AUD, NAL_PPS, NAL_SPS, nal_type, parse_sps, split_annexb
from gateway.media.normalizer import StreamNormalizer
from gateway.media.rtp_h264 import H264Depacketizer, RtpPacket, parse_rtp

av = pytest.importorskip("av")
GST, GST_INSPECT = shutil.which("gst-launch-1.0"), shutil.which("gst-inspect-1.0")
if GST is None or GST_INSPECT is None:  # pragma: no cover - depends on the machine
    pytest.skip("GStreamer is not installed", allow_module_level=True)

FRAMES = 12
GOP = 5
ENCODERS = {  # name: (encoder, extra output caps)
    # x264 with two slices per picture; config-interval=-1 makes rtph264pay repeat
    # SPS/PPS before every IDR slice (inside the picture)
    "x264-slices": ("x264enc tune=zerolatency key-int-max={gop} option-string=slices=4", ""),
    "openh264-slices": ("openh264enc slice-mode=1 num-slices=3 gop-size={gop}", ""),
    # B-frames need a profile above Baseline, which x264enc only picks when asked
    "x264-bframes": ("x264enc key-int-max={gop} bframes=2 b-adapt=false", ",profile=high"),
}


@dataclass
class Capture:
    name: str
    packets: list[RtpPacket]
    reference: list[list[bytes]]  # the encoder's pictures as split by FFmpeg's parser

    @property
    def sps_pps(self) -> list[bytes]:
        return [n for n in self.reference[0] if nal_type(n) in (NAL_SPS, NAL_PPS)]


def run_gst(encoder: str, workdir: Path) -> Capture:
    element, caps = ENCODERS[encoder]
    factory = element.split()[0]
    if subprocess.run([GST_INSPECT, factory], capture_output=True, check=False).returncode:
        pytest.skip(f"GStreamer element {factory} is not installed")
    es, rtp = workdir / "es.h264", workdir / "rtp.bin"
    pipeline = (
        f"videotestsrc num-buffers={FRAMES} pattern=ball "
        "! video/x-raw,width=320,height=240,framerate=30/1 "
        f"! {element.format(gop=GOP)} "
        f"! video/x-h264,stream-format=byte-stream,alignment=au{caps} ! tee name=t "
        f"t. ! queue ! filesink location={es} "
        "t. ! queue ! rtph264pay mtu=300 config-interval=-1 ! rtpstreampay "
        f"! filesink location={rtp}"
    )
    result = subprocess.run(
        [GST, "-q", *pipeline.split()], capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    data = rtp.read_bytes()
    packets, pos = [], 0
    while pos < len(data):  # RFC 4571 framing: 16-bit length, packet
        (size,) = struct.unpack_from("!H", data, pos)
        packets.append(parse_rtp(data[pos + 2 : pos + 2 + size]))
        pos += 2 + size
    parser = av.CodecContext.create("h264", "r")
    units = [*parser.parse(es.read_bytes()), *parser.parse(None)]
    return Capture(encoder, packets, [split_annexb(bytes(u)) for u in units])


@pytest.fixture(scope="module", params=list(ENCODERS))
def capture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Capture:
    return run_gst(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def slices(tmp_path_factory: pytest.TempPathFactory) -> Capture:
    return run_gst("x264-slices", tmp_path_factory.mktemp("slices"))


@dataclass
class Run:
    units: list[AccessUnit]
    on_marker: int  # pictures emitted by the push of the packet carrying their marker
    assembler: AccessUnitAssembler
    depacketizer: H264Depacketizer
    normalizer: StreamNormalizer


def receive(
    packets: Iterable[RtpPacket],
    *,
    marker: bool = True,
    strip: Iterable[int] = (),
    sdp: list[bytes] | None = None,
) -> Run:
    """What an RTSP source does with each packet, gap handling included."""
    depacketizer, assembler = H264Depacketizer(), AccessUnitAssembler(clock=lambda: 0.0)
    normalizer = StreamNormalizer(sdp or ())
    units: list[AccessUnit] = []
    on_marker = 0
    expected: int | None = None
    for p in packets:
        if expected is not None and p.sequence != expected:
            depacketizer.reset()
            assembler.mark_loss()
        expected = (p.sequence + 1) & 0xFFFF
        nals = [n for n in depacketizer.push(p.payload) if nal_type(n) not in strip]
        done = assembler.push(nals, p.timestamp, p.marker and marker)
        on_marker += sum(1 for u in done if p.marker and u.pts % 2**32 == p.timestamp)
        units += [normalizer.process(u) for u in done]
    units += [normalizer.process(u) for u in assembler.flush()]
    return Run(units, on_marker, assembler, depacketizer, normalizer)


def vcl(nals: Iterable[bytes]) -> list[bytes]:
    return [n for n in nals if 1 <= nal_type(n) <= 5]


def decode(units: Iterable[bytes]) -> list[bytes]:
    """Decoded pictures (all planes) of a sequence of Annex-B access units."""
    ctx = av.CodecContext.create("h264", "r")
    pictures = []
    for data in [*units, None]:
        try:
            frames = ctx.decode(av.Packet(data) if data is not None else None)
        except av.error.InvalidDataError:
            continue
        pictures += [b"".join(bytes(plane) for plane in f.planes) for f in frames]
    return pictures


def annexb(nals: list[bytes]) -> bytes:
    return b"".join(b"\x00\x00\x00\x01" + n for n in nals)


# --- whole pictures ------------------------------------------------------------------


def test_pictures_are_reassembled_whole(capture: Capture) -> None:
    assert len(capture.reference) == FRAMES
    if capture.name != "x264-bframes":
        assert all(len(vcl(pic)) > 1 for pic in capture.reference)  # really multi-slice
    run = receive(capture.packets)
    assert [vcl(u.nals) for u in run.units] == [vcl(pic) for pic in capture.reference]
    assert run.on_marker == FRAMES  # every picture went out with its marker: no added delay
    assert (run.assembler.dropped, run.depacketizer.dropped) == (0, 0)
    assert [i for i, u in enumerate(run.units) if u.keyframe] == list(range(0, FRAMES, GOP))
    assert all(nal_type(n) != NAL_AUD for u in run.units for n in u.nals)


def test_timestamps(capture: Capture) -> None:
    run = receive(capture.packets)
    first = capture.packets[0].timestamp
    pts = sorted(u.pts - first for u in run.units)  # B-frames: decoding order differs
    assert all(abs(p - 3000 * i) <= 1 for i, p in enumerate(pts))


def test_decodes_exactly_like_the_encoders_stream(capture: Capture) -> None:
    expected = decode(annexb(pic) for pic in capture.reference)
    assert len(expected) == FRAMES
    assert decode(u.annexb() for u in receive(capture.packets).units) == expected


def test_stream_facts(capture: Capture) -> None:
    run = receive(capture.packets)
    info = run.normalizer.info
    assert info is not None
    assert (info.width, info.height) == (320, 240)
    assert info.has_b_frames == (capture.name == "x264-bframes")
    assert info.profile_level_id == parse_sps(capture.sps_pps[0]).profile_level_id
    assert run.normalizer.generation == 1
    assert run.normalizer.errors == 0


def test_parameter_sets_only_in_the_sdp(capture: Capture) -> None:
    stripped = receive(capture.packets, strip=(NAL_SPS, NAL_PPS))
    assert len(decode(u.annexb() for u in stripped.units)) == 0  # what a browser gets: black
    run = receive(capture.packets, strip=(NAL_SPS, NAL_PPS), sdp=capture.sps_pps)
    keyframes = [u for u in run.units if u.keyframe]
    assert len(keyframes) == 3
    for unit in keyframes:
        kinds = [nal_type(n) for n in unit.nals]
        assert kinds.index(NAL_SPS) < kinds.index(NAL_PPS) < kinds.index(5)
    expected = decode(annexb(pic) for pic in capture.reference)
    assert decode(u.annexb() for u in run.units) == expected


def test_cameras_without_marker_bits(capture: Capture) -> None:
    run = receive(capture.packets, marker=False)
    assert [vcl(u.nals) for u in run.units] == [vcl(pic) for pic in capture.reference]
    assert run.on_marker == 0


# --- loss ----------------------------------------------------------------------------


@pytest.mark.parametrize("lost", [(3,), (10, 11), (20,), (0, 1, 2), (30, 45, 46), (60,)])
def test_loss_never_yields_a_damaged_picture(slices: Capture, lost: tuple[int, ...]) -> None:
    packets = [p for i, p in enumerate(slices.packets) if i not in lost]
    run = receive(packets)
    first = slices.packets[0].timestamp
    for unit in run.units:
        assert vcl(unit.nals) == vcl(slices.reference[round((unit.pts - first) / 3000)])
    # a picture is either emitted whole or counted as dropped (losing only an SPS/PPS
    # or SEI packet damages no picture: the normalizer puts the parameter sets back)
    assert len(run.units) + run.assembler.dropped == FRAMES


def fu_a_fragment(capture: Capture, *, start: bool, keyframe: bool, after: int = 0) -> int:
    """Index of the first FU-A packet (a start or a middle/end fragment) of a slice."""
    for i, p in enumerate(capture.packets[after:], after):
        fu_a, fu = p.payload[0] & 0x1F == 28, p.payload[1]
        if fu_a and bool(fu & 0x80) == start and (fu & 0x1F == 5) == keyframe:
            return i
    raise AssertionError("no such fragment")


@pytest.mark.parametrize(("start", "keyframe"), [(True, True), (False, True), (False, False)])
def test_loss_inside_a_slice_drops_that_picture_only(
    slices: Capture, start: bool, keyframe: bool
) -> None:
    lost = fu_a_fragment(slices, start=start, keyframe=keyframe, after=5)
    victim = slices.packets[lost].timestamp
    run = receive(p for i, p in enumerate(slices.packets) if i != lost)
    assert run.assembler.dropped == 1
    assert victim not in {u.pts % 2**32 for u in run.units}
    assert len(run.units) == FRAMES - 1
    first = slices.packets[0].timestamp
    for unit in run.units:
        assert vcl(unit.nals) == vcl(slices.reference[round((unit.pts - first) / 3000)])


# --- GOP cache: a new viewer -----------------------------------------------------------


def test_gop_cache_lets_a_late_viewer_decode_at_once(slices: Capture) -> None:
    run = receive(slices.packets, strip=(NAL_SPS, NAL_PPS), sdp=slices.sps_pps)
    gop = GopCache()
    for unit in run.units[:8]:  # the viewer joins after picture 8: mid-GOP
        gop.add(unit)
    cached = gop.frames()
    assert [u.pts for u in cached] == [u.pts for u in run.units[5:8]]
    expected = decode(annexb(pic) for pic in slices.reference)
    assert decode(u.annexb() for u in cached) == expected[5:8]

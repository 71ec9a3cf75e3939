"""gateway.media.continuity: after a discontinuity nothing passes until an IDR; frame_num
gaps are found in real x264 streams (PyAV), and pictures nobody refers to may go missing."""

from __future__ import annotations

import fractions

import pytest

from gateway.media.accessunit import AccessUnit
from gateway.media.continuity import Admission, ContinuityGate, FrameNumTracker
from gateway.media.h264 import NAL_IDR, nal_ref_idc, nal_type, split_annexb

av = pytest.importorskip("av")
if "libx264" not in av.codecs_available:  # pragma: no cover - depends on the machine
    pytest.skip("needs PyAV with libx264", allow_module_level=True)


def encode(frames: int, **x264: str) -> list[AccessUnit]:
    """A moving 160x96 picture, x264-encoded, as AccessUnits in decoding order."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = 160, 96, "yuv420p"
    ctx.time_base = fractions.Fraction(1, 30)
    ctx.framerate = fractions.Fraction(30, 1)
    ctx.options = {"preset": "superfast", "threads": "1", **x264}
    units: list[AccessUnit] = []
    for i in range(frames + 1):
        frame = None
        if i < frames:
            frame = av.VideoFrame(160, 96, "yuv420p")
            frame.pts = i
            pattern = bytes((i * 7 + k) & 0xFF for k in range(97))
            for plane in frame.planes:
                plane.update((pattern * (plane.buffer_size // 97 + 1))[: plane.buffer_size])
        for packet in ctx.encode(frame):
            nals = tuple(split_annexb(bytes(packet)))
            keyframe = any(nal_type(n) == NAL_IDR for n in nals)
            units.append(AccessUnit(nals, len(units) * 3000, keyframe, 0.0))
    return units


def admissions(gate: ContinuityGate, units: list[AccessUnit]) -> list[Admission]:
    return [gate.admit(u) for u in units]


P_ONLY = {"x264opts": "bframes=0:keyint=10:min-keyint=10:scenecut=0"}


def test_a_whole_stream_passes_after_its_first_idr() -> None:
    units = encode(25, **P_ONLY)
    gate = ContinuityGate()
    assert set(admissions(gate, units)) == {Admission.PASS}
    assert (gate.discontinuities, gate.held) == (0, 0)


def test_frame_num_wraps_without_a_gap() -> None:
    # x264 counts frame_num modulo 2**log2_max_frame_num (16 here): 40 P-frames wrap it.
    units = encode(40, x264opts="bframes=0:keyint=100:scenecut=0")
    assert sum(u.keyframe for u in units) == 1
    tracker = FrameNumTracker()
    assert not any(tracker.gap(u) for u in units)


def test_a_lost_reference_picture_holds_everything_until_the_next_idr() -> None:
    units = encode(25, **P_ONLY)  # IDRs at 0, 10, 20
    gate = ContinuityGate()
    stream = units[:4] + units[5:]  # picture 4 lost on the way
    result = admissions(gate, stream)
    assert result[:4] == [Admission.PASS] * 4
    assert result[4] is Admission.BREAK  # picture 5 refers to the missing 4
    assert result[5:9] == [Admission.HOLD] * 4  # pictures 6..9
    assert stream[9].keyframe and result[9:] == [Admission.PASS] * len(result[9:])
    assert (gate.discontinuities, gate.held) == (1, 5)


def test_interrupt_holds_until_an_idr_and_counts_once() -> None:
    units = encode(25, **P_ONLY)
    gate = ContinuityGate()
    assert admissions(gate, units[:3]) == [Admission.PASS] * 3
    assert gate.interrupt() is True
    assert gate.interrupt() is False  # a second report of the same hold
    # a reconnect: the camera kept encoding, we go on at picture 7
    assert admissions(gate, units[7:10]) == [Admission.HOLD] * 3
    assert gate.admit(units[10]) is Admission.PASS and units[10].keyframe
    assert gate.admit(units[11]) is Admission.PASS
    assert gate.discontinuities == 1


def test_the_stream_is_held_until_its_first_idr() -> None:
    units = encode(15, **P_ONLY)
    gate = ContinuityGate()
    assert admissions(gate, units[3:10]) == [Admission.HOLD] * 7
    assert gate.admit(units[10]) is Admission.PASS


def test_pictures_nobody_refers_to_may_be_missing() -> None:
    # Non-reference B-frames (no pyramid): losing one breaks nothing after it.
    units = encode(30, x264opts="bframes=2:b-pyramid=none:b-adapt=0:keyint=60:scenecut=0")
    droppable = [i for i, u in enumerate(units) if not u.keyframe and nal_ref_idc(_slice(u)) == 0]
    assert droppable, "x264 made no non-reference B-frames"
    lost = droppable[len(droppable) // 2]
    tracker = FrameNumTracker()
    assert not any(tracker.gap(u) for u in units[:lost] + units[lost + 1 :])
    # ...but losing the reference picture after it is a gap
    ref = next(i for i in range(lost + 1, len(units)) if nal_ref_idc(_slice(units[i])))
    tracker = FrameNumTracker()
    assert any(tracker.gap(u) for u in units[:ref] + units[ref + 1 :])


def test_streams_without_parameter_sets_are_never_called_broken() -> None:
    units = encode(12, **P_ONLY)
    tracker = FrameNumTracker()
    stripped = [AccessUnit(tuple(n for n in u.nals if nal_type(n) in (1, 5)), 0, u.keyframe, 0)
                for u in units]  # fmt: skip
    assert not any(tracker.gap(u) for u in stripped[:3] + stripped[6:])


def _slice(unit: AccessUnit) -> bytes:
    return next(n for n in unit.nals if nal_type(n) in (1, 5))

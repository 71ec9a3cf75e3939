"""Which pictures a viewer can decode after the stream was interrupted.

A P-picture is only correct on top of the pictures it refers to. When pictures went
missing upstream (the camera connection was re-established while the camera kept
encoding, RTP packets were lost, frame numbers jump), every picture up to the next IDR
refers to something a viewer never got, and a decoder shows it smeared. So after any
discontinuity nothing is passed on until an IDR: viewers hold their last good picture.

Pure: no I/O, no clock. The hub tells the gate about discontinuities it learns of (a
reconnect, the source's lost packets); the gate finds frame_num gaps itself.
"""

from __future__ import annotations

from enum import Enum

from gateway.media.accessunit import AccessUnit
from gateway.media.h264 import (
    NAL_IDR,
    NAL_PPS,
    NAL_SLICE,
    NAL_SPS,
    SpsInfo,
    nal_ref_idc,
    nal_type,
    parse_sps,
    pps_id,
    pps_sps_id,
    slice_frame_num,
    slice_pps_id,
)


class Admission(Enum):
    PASS = "pass"  # decodable: send it on
    HOLD = "hold"  # depends on something missed: drop it
    BREAK = "break"  # this picture revealed a new gap (frame_num): drop it, ask for an IDR


class FrameNumTracker:
    """Finds gaps in H.264 frame_num (7.4.3): each reference picture numbers itself one
    above the previous reference picture, so a jump means reference pictures are missing.

    Undetectable (and so never reported) when the SPS allows gaps, when the parameter
    sets are unknown, or across a memory_management_control_operation 5 (which restarts
    the count at 0 without us parsing it: frame_num 0 and 1 are always accepted).
    """

    def __init__(self) -> None:
        self._sps: dict[int, SpsInfo] = {}
        self._pps_sps: dict[int, int] = {}
        self._prev_ref: int | None = None

    def reset(self) -> None:
        """Forget the count (after a discontinuity found elsewhere)."""
        self._prev_ref = None

    def gap(self, unit: AccessUnit) -> bool:
        """True if `unit` shows that reference pictures before it are missing."""
        first_slice: bytes | None = None
        for nal in unit.nals:
            kind = nal_type(nal)
            if kind in (NAL_SLICE, NAL_IDR):
                first_slice = nal
                break
            if kind in (NAL_SPS, NAL_PPS):
                self._learn(nal)
        if first_slice is None:
            return False
        sps = self._sps_of(first_slice)
        frame_num = slice_frame_num(first_slice, sps) if sps is not None else None
        if sps is None or frame_num is None or sps.gaps_in_frame_num_allowed:
            self._prev_ref = None
            return False
        prev, is_ref = self._prev_ref, nal_ref_idc(first_slice) != 0
        if is_ref:
            self._prev_ref = frame_num
        if nal_type(first_slice) == NAL_IDR or prev is None:
            return False
        following = (prev + 1) % (1 << sps.log2_max_frame_num)
        return frame_num not in (prev, following) and frame_num > 1

    def _learn(self, nal: bytes) -> None:
        try:
            if nal_type(nal) == NAL_SPS:
                info = parse_sps(nal)
                self._sps[info.sps_id] = info
            else:
                self._pps_sps[pps_id(nal)] = pps_sps_id(nal)
        except ValueError:
            pass  # the normalizer counts broken parameter sets; here they just don't help

    def _sps_of(self, slice_nal: bytes) -> SpsInfo | None:
        pid = slice_pps_id(slice_nal)
        sid = self._pps_sps.get(pid) if pid is not None else None
        return self._sps.get(sid) if sid is not None else None


class ContinuityGate:
    """Passes pictures while the stream is whole; after a discontinuity holds every
    picture until an IDR. Starts holding: nothing decodes before the first IDR.

    Counters: `discontinuities` (holds begun), `held` (pictures dropped while holding).
    """

    def __init__(self) -> None:
        self._frame_nums = FrameNumTracker()
        self._holding = True
        self.discontinuities = 0
        self.held = 0

    @property
    def holding(self) -> bool:
        return self._holding

    def interrupt(self) -> bool:
        """Pictures were missed (reconnect, lost packets). True if this begins a hold
        (False while one is already under way)."""
        self._frame_nums.reset()
        if self._holding:
            return False
        self._holding = True
        self.discontinuities += 1
        return True

    def admit(self, unit: AccessUnit) -> Admission:
        gap = self._frame_nums.gap(unit)
        if unit.keyframe:
            self._holding = False
            return Admission.PASS
        if gap and not self._holding:
            self._holding = True
            self.discontinuities += 1
            self.held += 1
            return Admission.BREAK
        if self._holding:
            self.held += 1
            return Admission.HOLD
        return Admission.PASS

"""Make a camera's H.264 safe to hand to a browser unchanged, and learn its facts.

Browsers decode nothing until they hold the SPS and PPS. Many cameras send those only
in the SDP (sprop-parameter-sets), so a viewer joining at an IDR without them shows
black forever; every IDR therefore gets the current parameter sets put in front of it
when it lacks them. B-frames are detected because WebRTC cannot carry them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.media.accessunit import AccessUnit
from gateway.media.h264 import (
    NAL_AUD,
    NAL_IDR,
    NAL_PPS,
    NAL_SLICE,
    NAL_SPS,
    PictureSizeError,
    SpsInfo,
    nal_type,
    parse_sps,
    pps_id,
    pps_sps_id,
    slice_pps_id,
    slice_type,
)

_B_SLICE = 1
# NAL units that belong in front of inserted parameter sets: an AUD must come first
# in an access unit, and existing parameter sets stay in their place.
_LEADING = frozenset({NAL_AUD, NAL_SPS, NAL_PPS, 13, 15})  # 13 SPS ext, 15 subset SPS


@dataclass(frozen=True)
class StreamInfo:
    profile_level_id: str
    profile: str
    level: str
    width: int
    height: int
    sps_frame_rate: float | None
    has_b_frames: bool


class StreamNormalizer:
    """Tracks parameter sets, repairs IDRs that lack them, reports stream facts.

    Never raises on stream content: unparsable parameter sets are ignored and counted
    in `errors`. `generation` grows whenever the active SPS changes (0 = none known
    yet), so the hub can notice a camera switching resolution or profile. An SPS with an
    absurd picture size is not learned and its reason is kept in `refused`: the stream
    cannot be played and the hub says why.
    """

    def __init__(self, sdp_parameter_sets: Sequence[bytes] = ()) -> None:
        self._sps: dict[int, bytes] = {}
        self._sps_info: dict[int, SpsInfo] = {}
        self._pps: dict[int, bytes] = {}
        self._active: int | None = None  # id of the SPS the stream uses
        self._seen_b_slice = False
        self.generation = 0
        self.errors = 0
        self.repaired = 0  # units returned changed
        self.refused: str | None = None
        for nal in sdp_parameter_sets:
            self._learn(nal)

    @property
    def info(self) -> StreamInfo | None:
        sps = self._sps_info.get(self._active) if self._active is not None else None
        if sps is None:
            return None
        return StreamInfo(
            profile_level_id=sps.profile_level_id,
            profile=sps.profile_name,
            level=sps.level,
            width=sps.width,
            height=sps.height,
            sps_frame_rate=sps.frame_rate,
            has_b_frames=self._seen_b_slice or bool(sps.max_num_reorder_frames),
        )

    @property
    def has_b_frames(self) -> bool:
        info = self.info
        return info.has_b_frames if info else self._seen_b_slice

    def process(self, au: AccessUnit) -> AccessUnit:
        """The unit itself when it needs nothing, else a repaired copy.

        Repairs: an IDR lacking parameter sets gets the current ones in front of its
        first slice; SPS/PPS found after the first slice are removed. The latter is
        what `rtph264pay config-interval=-1` does to multi-slice IDRs (it repeats them
        before every slice); a parameter set there opens a new access unit (7.4.1.2.3),
        so strict decoders cut the picture in two.
        """
        first_slice: int | None = None
        present_sps: set[int] = set()
        present_pps: set[int] = set()
        used_pps: set[int] = set()
        late: set[int] = set()
        for index, nal in enumerate(au.nals):
            kind = nal_type(nal)
            if kind in (NAL_SLICE, NAL_IDR):
                if first_slice is None:
                    first_slice = index
                if kind == NAL_IDR:
                    pid = slice_pps_id(nal)
                    if pid is not None:
                        used_pps.add(pid)
                if not self._seen_b_slice and slice_type(nal) == _B_SLICE:
                    self._seen_b_slice = True
            elif kind in (NAL_SPS, NAL_PPS):
                set_id = self._learn(nal)  # learned wherever they are: newest wins
                if first_slice is not None:
                    late.add(index)
                elif set_id is not None:
                    (present_sps if kind == NAL_SPS else present_pps).add(set_id)

        insert: list[bytes] = []
        if au.keyframe and first_slice is not None:
            insert = self._missing(used_pps, present_sps, present_pps)
        if not insert and not late:
            return au
        nals = [n for i, n in enumerate(au.nals) if i not in late]
        if insert and first_slice is not None:  # late indices all follow first_slice
            at = first_slice
            while at > 0 and nal_type(nals[at - 1]) not in _LEADING:
                at -= 1  # go before SEI too: a buffering-period SEI refers to the SPS
            sps = [n for n in insert if nal_type(n) == NAL_SPS]
            pps = [n for n in insert if nal_type(n) != NAL_SPS]
            nals[at:at] = pps
            # An SPS goes before every PPS the unit carries: a decoder reads a PPS against
            # its SPS, and FFmpeg refuses a PPS whose SPS it has not seen yet.
            first_pps = next((i for i in range(at) if nal_type(nals[i]) == NAL_PPS), at)
            nals[first_pps:first_pps] = sps
        self.repaired += 1
        return AccessUnit(
            nals=tuple(nals),
            pts=au.pts,
            keyframe=au.keyframe,
            arrival=au.arrival,
            capture=au.capture,
        )

    def _missing(
        self, used_pps: set[int], present_sps: set[int], present_pps: set[int]
    ) -> list[bytes]:
        """The parameter sets an IDR using `used_pps` needs but does not carry."""
        needed_sps = self._activate(used_pps)
        if not used_pps:  # slice headers unreadable: fall back to every known set
            used_pps, needed_sps = set(self._pps), set(self._sps)
        missing = [self._sps[s] for s in sorted(needed_sps - present_sps) if s in self._sps]
        missing += [self._pps[p] for p in sorted(used_pps - present_pps) if p in self._pps]
        return missing

    def _activate(self, used_pps: set[int]) -> set[int]:
        """SPS ids behind the PPSs an IDR uses; the first becomes the active SPS."""
        needed = set()
        for pid in sorted(used_pps):
            pps = self._pps.get(pid)
            if pps is not None:
                needed.add(pps_sps_id(pps))  # validated when learned
        if needed:
            active = min(needed)
            if active != self._active and active in self._sps_info:
                self._active = active
                self._on_active_changed()
        return needed

    def _learn(self, nal: bytes) -> int | None:
        """Store an SPS or PPS by id (newest wins); returns its id, None if unusable."""
        kind = nal_type(nal)
        try:
            if kind == NAL_SPS:
                info = parse_sps(nal)
                sid = info.sps_id
                changed = self._sps.get(sid) != nal
                self._sps[sid] = nal
                self._sps_info[sid] = info
                if self._active is None:
                    self._active = sid
                    self._on_active_changed()
                elif changed and sid == self._active:
                    self._on_active_changed()
                return sid
            if kind == NAL_PPS:
                pps_sps_id(nal)  # reject a PPS whose ids do not parse
                pid = pps_id(nal)
                self._pps[pid] = nal
                return pid
        except PictureSizeError as exc:
            self.errors += 1
            self.refused = str(exc)
        except ValueError:
            self.errors += 1
        return None

    def _on_active_changed(self) -> None:
        if self.generation:
            # New encoder settings: B-frame use seen under the old SPS says nothing now.
            self._seen_b_slice = False
        self.generation += 1

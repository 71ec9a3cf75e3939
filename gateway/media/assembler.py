"""RTP-delivered NAL units -> whole AccessUnits.

A browser given half a picture as a frame shows it half-corrupt while its stats look
healthy, so pictures are only ever emitted whole: all NAL units of one RTP timestamp,
closed by the marker bit (no added latency) or, for cameras that never set it, by the
next timestamp. After packet loss a picture that may be incomplete is dropped instead.
A picture that grows past its cap (a camera that never changes timestamp nor sets the
marker) is dropped and reported with LimitExceeded, so memory stays bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.media.accessunit import AccessUnit
from gateway.media.h264 import NAL_AUD, NAL_IDR, NAL_SLICE, first_mb_in_slice, nal_type
from gateway.media.limits import LimitExceeded, StreamLimits, describe_bytes

_WRAP = 1 << 32
_HALF = 1 << 31

# NAL types that may only open an access unit, before its first slice (7.4.1.2.3):
# SEI, SPS, PPS, AUD, SPS extension, prefix NAL, subset SPS, depth PS, reserved 17-18.
_AU_OPENERS = frozenset({6, 7, 8, 9, 13, 14, 15, 16, 17, 18})
# Parameter sets / SEI held over to the next picture are few; more means no pictures come.
_MAX_CARRY = 16
_MAX_CARRY_BYTES = 64 * 1024  # parameter sets and SEI are small; the oldest go first


def starts_access_unit(nal: bytes) -> bool:
    """True if `nal` can only be the first NAL unit of a picture we received whole."""
    kind = nal_type(nal)
    if kind in _AU_OPENERS:
        return True
    return kind in (NAL_SLICE, NAL_IDR) and first_mb_in_slice(nal) == 0


class TimestampUnwrapper:
    """32-bit RTP timestamps -> an int that never jumps back by 2**32.

    Starts at the first timestamp itself. Each step is taken as the shortest way
    round the 32-bit circle, so small backward steps (B-frames are sent in decoding
    order with presentation timestamps) stay small and negative.
    """

    def __init__(self) -> None:
        self._last_raw: int | None = None
        self._value = 0

    def __call__(self, raw: int) -> int:
        raw &= _WRAP - 1
        if self._last_raw is None:
            self._value = raw
        else:
            delta = (raw - self._last_raw) % _WRAP
            self._value += delta - _WRAP if delta >= _HALF else delta
        self._last_raw = raw
        return self._value


class AccessUnitAssembler:
    """Groups NAL units by RTP timestamp into AccessUnits.

    Every AccessUnit holds at least one slice. NAL units that close without one (some
    cameras set the marker on their SPS and PPS packets, or stamp them with another
    timestamp than the IDR) are carried over into the next picture instead.

    Counters: `emitted`, `dropped` (pictures lost to packet loss), `marker_errors`
    (times the marker bit was found set in the middle of a picture), `oversized`
    (pictures dropped for growing past `max_picture_bytes`).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        max_picture_bytes: int = StreamLimits.picture_bytes,
    ) -> None:
        self._clock = clock
        self.max_picture_bytes = max_picture_bytes
        self._bytes = 0  # of self._nals
        self._unwrap = TimestampUnwrapper()
        self._nals: list[bytes] = []
        self._carry: list[bytes] = []  # slice-less NAL units waiting for a picture
        self._ts: int | None = None  # RTP timestamp of the picture being assembled
        self._pts = 0
        self._damaged = False  # the current picture lost data: discard the rest of it
        self._check_start = False  # after a loss: the next picture must open cleanly
        self._last_emitted_ts: int | None = None
        self._closed_by_marker = False
        # Cleared when a camera sets the marker mid-picture; the timestamp alone then
        # delimits pictures (a frame of latency, but whole pictures).
        self.trust_marker = True
        self.emitted = 0
        self.dropped = 0
        self.marker_errors = 0
        self.oversized = 0

    def push(self, nals: list[bytes], rtp_timestamp: int, marker: bool) -> list[AccessUnit]:
        """Feed the NAL units of one RTP packet (possibly none); returns finished pictures."""
        out: list[AccessUnit] = []
        if self._ts is not None and rtp_timestamp != self._ts:
            self._finish(out, by_marker=False)
        if self._ts is None:
            self._ts = rtp_timestamp
            self._pts = self._unwrap(rtp_timestamp)
        for nal in nals:
            if self._damaged:
                break
            if not self._nals:
                self._check_first(nal)
            if nal_type(nal) != NAL_AUD:  # the AU boundary is ours to keep, not an AUD's
                self._nals.append(nal)
                self._bytes += len(nal)
                if self._bytes > self.max_picture_bytes:
                    self._drop()
                    self.oversized += 1
                    limit = describe_bytes(self.max_picture_bytes)
                    raise LimitExceeded(f"picture larger than {limit}: dropped")
        if marker and self.trust_marker:
            self._finish(out, by_marker=True)
        return out

    def mark_loss(self) -> None:
        """The caller saw a sequence gap.

        The picture in progress is dropped, and the next one too unless it visibly
        starts at its beginning (the lost packets may have been its head).
        """
        if self._ts is not None:
            self._drop()
        self._check_start = True

    def flush(self) -> list[AccessUnit]:
        """Emit the picture in progress (end of stream)."""
        out: list[AccessUnit] = []
        if self._ts is not None:
            self._finish(out, by_marker=False)
        return out

    def _check_first(self, nal: bytes) -> None:
        """Vet the first NAL unit of a picture when there is reason to doubt it is one."""
        if self._check_start:
            self._check_start = False
            if not starts_access_unit(nal):
                self._drop()  # the picture's head was in the lost packets
        elif (
            self._ts == self._last_emitted_ts
            and self._closed_by_marker
            and not starts_access_unit(nal)
        ):
            # More of a picture that a marker bit already closed: this camera sets the
            # marker per slice. That picture went out incomplete; this rest of it is
            # useless. From now on only the timestamp delimits pictures.
            self.trust_marker = False
            self.marker_errors += 1
            self._drop()

    def _drop(self) -> None:
        if not self._damaged:
            self._damaged = True
            self.dropped += 1
        self._nals = []
        self._bytes = 0

    def _finish(self, out: list[AccessUnit], *, by_marker: bool) -> None:
        if self._damaged:
            pass  # already counted in `dropped`
        elif any(NAL_SLICE <= nal_type(n) <= NAL_IDR for n in self._nals):
            out.append(
                AccessUnit(
                    nals=(*self._carry, *self._nals),
                    pts=self._pts,
                    keyframe=any(nal_type(n) == NAL_IDR for n in self._nals),
                    arrival=self._clock(),
                )
            )
            self._carry = []
            self.emitted += 1
            self._last_emitted_ts = self._ts
            self._closed_by_marker = by_marker
        else:
            self._carry = _newest(self._carry + self._nals)
        self._ts = None
        self._nals = []
        self._bytes = 0
        self._damaged = False


def _newest(nals: list[bytes]) -> list[bytes]:
    """The newest NAL units within the carry-over caps."""
    kept: list[bytes] = []
    size = 0
    for nal in reversed(nals[-_MAX_CARRY:]):
        size += len(nal)
        if size > _MAX_CARRY_BYTES:
            break
        kept.append(nal)
    kept.reverse()
    return kept

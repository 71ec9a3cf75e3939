"""gateway.media.gop: the cached GOP a new viewer starts from."""

from __future__ import annotations

import pytest

from gateway.media.accessunit import AccessUnit
from gateway.media.gop import GopCache


def frame(pts: int, key: bool = False, size: int = 10) -> AccessUnit:
    nal = (b"\x65" if key else b"\x41") + bytes(size - 1)
    return AccessUnit(nals=(nal,), pts=pts, keyframe=key, arrival=0.0)


def test_starts_empty_and_ignores_frames_before_the_first_keyframe() -> None:
    gop = GopCache()
    assert len(gop) == 0 and gop.frames() == [] and gop.nbytes == 0
    gop.add(frame(0))
    gop.add(frame(1))
    assert len(gop) == 0


def test_keeps_the_current_gop_in_order() -> None:
    gop = GopCache()
    gop.add(frame(0))
    frames = [frame(1, key=True), frame(2), frame(3)]
    for f in frames:
        gop.add(f)
    assert gop.frames() == frames
    assert gop.frames()[0].keyframe
    assert gop.nbytes == 30
    nxt = frame(4, key=True)
    gop.add(nxt)  # a keyframe starts a new GOP
    assert gop.frames() == [nxt]
    gop.add(frame(5))
    assert [f.pts for f in gop.frames()] == [4, 5]


def test_frames_returns_a_copy() -> None:
    gop = GopCache()
    gop.add(frame(0, key=True))
    gop.frames().clear()
    assert len(gop) == 1


def test_frame_cap_clears_until_the_next_keyframe() -> None:
    gop = GopCache(max_frames=3)
    for i in range(3):
        gop.add(frame(i, key=i == 0))
    assert len(gop) == 3
    gop.add(frame(3))  # a fourth frame: the GOP no longer fits, and a tail is useless
    assert len(gop) == 0 and gop.overflows == 1
    gop.add(frame(4))
    assert len(gop) == 0
    gop.add(frame(5, key=True))
    gop.add(frame(6))
    assert [f.pts for f in gop.frames()] == [5, 6]


def test_byte_cap() -> None:
    gop = GopCache(max_bytes=100)
    gop.add(frame(0, key=True, size=60))
    gop.add(frame(1, size=40))
    assert gop.nbytes == 100 and len(gop) == 2
    gop.add(frame(2, size=1))
    assert len(gop) == 0 and gop.nbytes == 0
    gop.add(frame(3, key=True, size=101))  # even the keyframe alone is too big
    assert len(gop) == 0
    assert gop.overflows == 2


def test_clear() -> None:
    gop = GopCache()
    gop.add(frame(0, key=True))
    gop.clear()
    assert len(gop) == 0 and gop.nbytes == 0
    gop.add(frame(1))  # cleared: wait for a keyframe again
    assert len(gop) == 0


def test_defaults_and_validation() -> None:
    gop = GopCache()
    assert (gop.max_frames, gop.max_bytes) == (600, 64 * 1024 * 1024)
    for kwargs in ({"max_frames": 0}, {"max_bytes": 0}):
        with pytest.raises(ValueError):
            GopCache(**kwargs)

"""The PyAV compatibility pieces of the Pi 5's encoder path, on the PyAV installed here."""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import av
import numpy as np

from gateway.sources.picamera_encoder import (
    LibavKeyframes,
    keyframe_picture_type,
    pyav_too_old,
    usable_profile,
)


def test_the_keyframe_mark_makes_libx264_emit_an_idr_mid_gop() -> None:
    picture_type = keyframe_picture_type(av)
    assert picture_type is not None
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 64, 48, "yuv420p"
    encoder.time_base = Fraction(1, 30)
    encoder.gop_size = 1000
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency"}
    keyframes = []
    for n in range(12):
        frame = av.VideoFrame.from_ndarray(
            np.full((72, 64), (n * 8) & 0xFF, dtype=np.uint8), format="yuv420p"
        )
        frame.pts = n
        if n == 6:
            frame.pict_type = picture_type
        keyframes += [packet.pts for packet in encoder.encode(frame) if packet.is_keyframe]
    keyframes += [p.pts for p in encoder.encode(None) if p.is_keyframe]
    assert keyframes == [0, 6]


def test_profiles_are_checked_before_the_encoder_starts() -> None:
    assert usable_profile(av, "main") == ("main", None)
    assert usable_profile(av, "High") == ("High", None)
    assert usable_profile(av, None) == (None, None)
    profile, why = usable_profile(av, "ultra")
    assert profile is None and why is not None and "'ultra'" in why


def test_a_pyav_too_old_for_picamera2_is_named() -> None:
    assert pyav_too_old(av) is None
    why = pyav_too_old(SimpleNamespace(__version__="13.1.0"))
    assert why is not None and "PyAV 13.1.0" in why and ">= 14" in why
    assert pyav_too_old(SimpleNamespace(__version__="14.0.1")) is None


def test_if_picamera2_internals_change_keyframes_are_given_up_with_a_log_line(caplog) -> None:
    class EncoderWithoutStart:  # what a picamera2 release without LibavH264Encoder._start is
        pass

    keyframes = LibavKeyframes(EncoderWithoutStart(), keyframe_picture_type(av))
    assert not keyframes.working and not keyframes.request()
    assert "cannot force keyframes" in caplog.text and "last keyframe" in caplog.text

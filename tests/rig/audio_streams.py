"""gst-rtsp-server launch strings for cameras with sound: test-pattern video as `pay0`
plus a sine tone in one of the codecs cameras send, as `pay1`."""

from __future__ import annotations

from typing import Any

from tests.rig.streams import testsrc_h264

# codec -> (raw caps, encoder and payloader); each 20 ms (G.711) or 1024 samples (AAC).
AUDIO_BRANCHES = {
    "PCMA": ("rate=8000,channels=1", "samplesperbuffer=160", "alawenc ! rtppcmapay"),
    "PCMU": ("rate=8000,channels=1", "samplesperbuffer=160", "mulawenc ! rtppcmupay"),
    "OPUS": ("rate=48000,channels=2", "samplesperbuffer=960", "opusenc ! rtpopuspay"),
    "AAC": ("rate=16000,channels=1", "samplesperbuffer=1024", "voaacenc ! rtpmp4gpay pt=97"),
    "LATM": ("rate=16000,channels=1", "samplesperbuffer=1024", "voaacenc ! rtpmp4apay pt=97"),
}


def testsrc_with_audio(codec: str, freq: int = 440, **video: Any) -> str:
    """testsrc_h264(**video) with a live sine tone of `freq` Hz in `codec` as pay1."""
    caps, buffers, chain = AUDIO_BRANCHES[codec]
    video_launch = testsrc_h264(**video).strip()
    assert video_launch.startswith("(") and video_launch.endswith(")")
    audio = (
        f"audiotestsrc is-live=true wave=sine freq={freq} {buffers} "
        f"! audio/x-raw,{caps} ! {chain} name=pay1"
    )
    return f"{video_launch[:-1]} {audio} )"


testsrc_with_audio.__test__ = False  # type: ignore[attr-defined]

"""H.264 profile negotiation: advertise what the camera really sends.

aiortc only knows Constrained Baseline and Baseline (42e01f/42001f). A camera sending
High or Main labelled as Baseline plays in Chromium's software decoder, but hardware
decoders and other browsers may refuse it. camgate registers the other H.264 profiles
with aiortc once and, per viewer, prefers the offered profile that can decode the
camera's stream; only when the browser offers none of those does it fall back to the
closest label it does offer (documented in docs/webrtc.md).
"""

from __future__ import annotations

import logging

from aiortc import RTCRtpTransceiver
from aiortc.codecs import get_capabilities
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters

from gateway.compat import globals as library_globals

log = logging.getLogger("camgate.webrtc")

# profile_idc + constraint byte, as they appear in profile-level-id, per label we offer.
# Level 1f (3.1) with level-asymmetry-allowed: the level describes what we receive.
EXTRA_PROFILES = ("4d001f", "64001f", "640c1f", "f4001f")
CONSTRAINED_BASELINE = "42e01f"
BASELINE = "42001f"
MAIN = "4d001f"
HIGH = "64001f"
CONSTRAINED_HIGH = "640c1f"
HIGH_444 = "f4001f"

# For a camera profile: the labels whose decoders can play it, best first, then the
# fallbacks that merely happen to work in software decoders.
_DECODABLE_BY = {
    "constrained-baseline": [
        CONSTRAINED_BASELINE,
        BASELINE,
        MAIN,
        HIGH,
        CONSTRAINED_HIGH,
        HIGH_444,
    ],
    "baseline": [BASELINE, CONSTRAINED_BASELINE, MAIN, HIGH, HIGH_444],
    "main": [MAIN, HIGH, HIGH_444],
    "high": [HIGH, HIGH_444],
    "constrained-high": [CONSTRAINED_HIGH, HIGH, HIGH_444],
}
_FALLBACK = [CONSTRAINED_BASELINE, BASELINE, MAIN, HIGH, CONSTRAINED_HIGH, HIGH_444]

_registered = False

# Chromium numbers codecs from 35-63 as well as 96-127 (both are free for dynamic use).
# aiortc only treats 96-127 as dynamic, so for an offered codec at, say, 41 its answer
# keeps aiortc's own number, which can collide with one of the offer's (seen: H.264 and
# RTX both at 109, and Chromium rejects the answer).
DYNAMIC_PAYLOAD_TYPES = frozenset(range(35, 64)) | frozenset(range(96, 128))


def register_h264_profiles() -> None:
    """Teach aiortc the H.264 profiles beyond Baseline (idempotent, process-wide)."""
    global _registered
    if _registered:
        return
    _registered = True
    gone = library_globals.missing()
    video = library_globals.codec_table("video")
    if gone or video is None:
        log.warning(
            "H.264 profiles beyond Baseline not registered (this aiortc lacks %s): viewers"
            " of Main and High cameras are offered Baseline labels",
            ", ".join(gone),
        )
        return
    library_globals.widen_dynamic_payload_types(DYNAMIC_PAYLOAD_TYPES)
    known = {c.parameters.get("profile-level-id") for c in video if c.mimeType == "video/H264"}
    next_pt = max(c.payloadType or 0 for c in video) + 1
    template = next(c for c in video if c.mimeType == "video/H264")
    for plid in EXTRA_PROFILES:
        if plid in known:
            continue
        video.append(
            RTCRtpCodecParameters(
                mimeType="video/H264",
                clockRate=90000,
                payloadType=next_pt,
                rtcpFeedback=list(template.rtcpFeedback),
                parameters={**template.parameters, "profile-level-id": plid},
            )
        )
        video.append(
            RTCRtpCodecParameters(
                mimeType="video/rtx",
                clockRate=90000,
                payloadType=next_pt + 1,
                parameters={"apt": next_pt},
            )
        )
        next_pt += 2


def camera_profile_key(profile_level_id: str | None) -> str | None:
    """Which row of the decodability table a camera's profile-level-id falls in."""
    if not profile_level_id or len(profile_level_id) != 6:
        return None
    try:
        idc = int(profile_level_id[0:2], 16)
        iop = int(profile_level_id[2:4], 16)
    except ValueError:
        return None
    if idc == 0x42:
        return "constrained-baseline" if iop & 0x40 else "baseline"
    if idc == 0x4D:
        return "constrained-baseline" if iop & 0x80 else "main"  # constraint_set1: CB-compatible
    if idc == 0x64:
        return "constrained-high" if iop & 0x0C == 0x0C else "high"
    return "high" if idc in (0x6E, 0x7A, 0xF4) else None


def preferred_labels(profile_level_id: str | None) -> list[str]:
    """profile-level-id labels to offer for this camera, most fitting first."""
    key = camera_profile_key(profile_level_id)
    ranked = list(_DECODABLE_BY.get(key, [])) if key else []
    return ranked + [p for p in _FALLBACK if p not in ranked]


def prefer_camera_profile(transceiver: RTCRtpTransceiver, profile_level_id: str | None) -> None:
    """Set H.264-only codec preferences on a sending transceiver, camera's profile first.

    Must run before setRemoteDescription: aiortc filters the offer's codecs then.
    """
    register_h264_profiles()
    caps = get_capabilities("video").codecs
    by_label = {
        str(c.parameters.get("profile-level-id")): c for c in caps if c.mimeType == "video/H264"
    }
    ordered: list[RTCRtpCodecCapability] = [
        by_label[label] for label in preferred_labels(profile_level_id) if label in by_label
    ]
    ordered += [c for c in caps if c.mimeType == "video/rtx"]  # keep RTX (NACK retransmits)
    transceiver.setCodecPreferences(ordered)

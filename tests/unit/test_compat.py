"""The library internals camgate relies on (gateway/compat/) are all there in the
installed versions, and the check finds it when one is not (an upgrade that renames or
reshapes one makes camgate take the fallback send path, see
tests/integration/test_send_paths.py)."""

from __future__ import annotations

import logging
from typing import Any

import pylibsrtp
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender

from gateway.compat import aiortc as aiortc_compat
from gateway.compat import globals as globals_compat
from gateway.compat import srtp as srtp_compat
from gateway.compat.check import FALLBACK, FAST, FORCE_ENV, check_libraries
from gateway.webrtc.fastsend import FastSender


async def test_every_internal_is_present_in_the_installed_libraries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "camgate.compat")
    report = await check_libraries()
    assert report.missing == ()
    assert report.send_path == FAST and not report.forced
    assert report.to_json() == {"send_path": "fast", "missing": []}
    assert "send path: fast" in caplog.text


async def test_a_missing_sender_field_is_named() -> None:
    pc = RTCPeerConnection()
    try:
        sender = pc.addTransceiver("video", direction="sendonly").sender
        assert aiortc_compat.missing(sender) == []
        del sender._RTCRtpSender__packet_count  # type: ignore[attr-defined]
        del sender.transport._srtp_profiles
        assert aiortc_compat.missing(sender) == [
            "RTCRtpSender.__packet_count",
            "RTCDtlsTransport._srtp_profiles",
            *(f"SRTPProtectionProfile.{n}" for n in aiortc_compat.SRTP_PROFILE_ATTRIBUTES),
        ]
    finally:
        await pc.close()


async def test_a_reshaped_or_renamed_hook_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    original = RTCRtpSender._run_rtp

    async def run_rtp(self: RTCRtpSender, parameters: Any) -> None:
        await original(self, parameters)

    monkeypatch.setattr(RTCRtpSender, "_run_rtp", run_rtp)
    monkeypatch.delattr(RTCRtpSender, "_send_keyframe")
    report = await check_libraries()
    assert report.send_path == FALLBACK and not report.forced
    assert report.missing == (
        "aiortc: RTCRtpSender._run_rtp()",
        "aiortc: RTCRtpSender._send_keyframe()",
    )


async def test_the_fallback_can_be_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FORCE_ENV, "fallback")
    report = await check_libraries()
    assert report.send_path == FALLBACK and report.forced and report.missing == ()


def test_pylibsrtp_internals_are_named_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert srtp_compat.missing(pylibsrtp.Session()) == []
    monkeypatch.setattr(pylibsrtp, "lib", object())  # its C library's functions moved
    assert srtp_compat.missing(object()) == list(srtp_compat.REQUIRED)


async def test_module_level_names_are_named_when_missing_and_only_their_feature_stops(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import aioice.ice
    from aiortc import codecs, rtp

    from gateway.config import CandidateFilter
    from gateway.webrtc import codecs as camgate_codecs
    from gateway.webrtc.ice_filter import install_candidate_filter

    assert globals_compat.missing() == []
    monkeypatch.setattr(globals_compat, "_original_host_addresses", lambda ipv4: [])
    monkeypatch.delattr(rtp, "DYNAMIC_PAYLOAD_TYPES")
    monkeypatch.setattr(codecs, "CODECS", {"audio": []})
    assert globals_compat.missing() == [
        "aioice: ice.get_host_addresses(use_ipv4, use_ipv6)",
        "aiortc: rtp.DYNAMIC_PAYLOAD_TYPES",
        "aiortc: codecs.CODECS['video']",
    ]
    report = await check_libraries()
    assert report.send_path == FAST  # these never cost the send path
    assert "aiortc: codecs.CODECS['video']" in report.missing

    caplog.set_level(logging.WARNING, "camgate.webrtc")
    monkeypatch.setattr(camgate_codecs, "_registered", False)
    camgate_codecs.register_h264_profiles()  # warns instead of raising
    assert "H.264 profiles beyond Baseline not registered" in caplog.text
    before = aioice.ice.get_host_addresses
    install_candidate_filter(CandidateFilter(addresses=("127.0.0.2",)))
    assert aioice.ice.get_host_addresses is before  # left alone, with an error logged
    assert "webrtc.candidates cannot be applied" in caplog.text


async def test_header_template_before_negotiation() -> None:
    pc = RTCPeerConnection()
    try:
        sender = pc.addTransceiver("video", direction="sendonly").sender

        async def no_frames() -> None:
            return None

        loop = FastSender(sender, no_frames)
        header, abs_offset = loop._header_template(102)
        # No header extensions negotiated yet: a plain 12-byte header with the SSRC.
        # (With mid and abs-send-time, the end-to-end tests decode what it sends.)
        assert len(header) == 12 and abs_offset is None and header[1] == 102
        assert int.from_bytes(header[8:12], "big") == sender._ssrc
    finally:
        await pc.close()

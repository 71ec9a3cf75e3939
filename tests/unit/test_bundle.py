"""An offer's bundled m-lines share the BUNDLE-tagged m-line's transport credentials."""

from __future__ import annotations

from aiortc.sdp import SessionDescription

from gateway.webrtc.bundle import bundle_credentials

SESSION = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"


def _section(kind: str, mid: str, ufrag: str, pwd: str, fingerprint: str) -> str:
    return (
        f"m={kind} 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\n"
        f"a=recvonly\r\na=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n"
        f"a=fingerprint:sha-256 {fingerprint}\r\na=setup:actpass\r\n"
    )


def _credentials(sdp: str) -> list[tuple[str, str, list[str]]]:
    parsed = SessionDescription.parse(sdp)
    return [
        (
            m.ice.usernameFragment,
            m.ice.password,
            [f.value for f in m.dtls.fingerprints],
        )
        for m in parsed.media
    ]


def test_the_tagged_m_lines_credentials_go_to_every_bundled_one() -> None:
    sdp = (
        SESSION
        + "a=group:BUNDLE 0 1\r\n"
        + _section("audio", "0", "aaaa", "audio-password-0123456", "AA:AA")
        + _section("video", "1", "vvvv", "video-password-0123456", "BB:BB")
    )
    rewritten = bundle_credentials(sdp)
    assert _credentials(rewritten) == [("aaaa", "audio-password-0123456", ["AA:AA"])] * 2
    assert "a=setup:actpass" in rewritten.split("m=video")[1]  # the rest is kept


def test_the_tag_is_the_groups_first_mid_not_the_first_m_line() -> None:
    sdp = (
        SESSION
        + "a=group:BUNDLE 1 0\r\n"
        + _section("audio", "0", "aaaa", "audio-password-0123456", "AA:AA")
        + _section("video", "1", "vvvv", "video-password-0123456", "BB:BB")
    )
    assert (
        _credentials(bundle_credentials(sdp)) == [("vvvv", "video-password-0123456", ["BB:BB"])] * 2
    )


def test_m_lines_outside_the_group_keep_their_own() -> None:
    sdp = (
        SESSION
        + "a=group:BUNDLE 0\r\n"
        + _section("audio", "0", "aaaa", "audio-password-0123456", "AA:AA")
        + _section("video", "1", "vvvv", "video-password-0123456", "BB:BB")
    )
    assert bundle_credentials(sdp) == sdp


def test_an_offer_without_bundle_or_with_shared_credentials_is_unchanged() -> None:
    plain = (
        SESSION
        + _section("audio", "0", "aaaa", "audio-password-0123456", "AA:AA")
        + _section("video", "1", "vvvv", "video-password-0123456", "BB:BB")
    )
    assert bundle_credentials(plain) == plain
    shared = (
        SESSION
        + "a=group:BUNDLE 0 1\r\n"
        + _section("audio", "0", "aaaa", "audio-password-0123456", "AA:AA")
        + _section("video", "1", "aaaa", "audio-password-0123456", "AA:AA")
    )
    assert bundle_credentials(shared) == shared
    assert bundle_credentials("junk") == "junk"


def test_session_level_credentials_stand_for_a_tag_without_its_own() -> None:
    sdp = (
        SESSION
        + "a=group:BUNDLE 0 1\r\na=ice-ufrag:ssss\r\na=ice-pwd:session-password-012345\r\n"
        + "a=fingerprint:sha-256 CC:CC\r\n"
        + "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
        + "a=recvonly\r\na=setup:actpass\r\n"
        + _section("video", "1", "vvvv", "video-password-0123456", "BB:BB")
    )
    assert (
        _credentials(bundle_credentials(sdp))
        == [("ssss", "session-password-012345", ["CC:CC"])] * 2
    )

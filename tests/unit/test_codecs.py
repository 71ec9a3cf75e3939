import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

from gateway.webrtc.codecs import camera_profile_key, prefer_camera_profile, preferred_labels


@pytest.mark.parametrize(
    ("plid", "key"),
    [
        ("42e01f", "constrained-baseline"),
        ("42001f", "baseline"),
        ("4d0028", "main"),
        ("640028", "high"),
        ("640c1f", "constrained-high"),
        (None, None),
        ("zz", None),
    ],
)
def test_profile_key(plid: str | None, key: str | None) -> None:
    assert camera_profile_key(plid) == key


def test_high_camera_prefers_high_then_supersets() -> None:
    assert preferred_labels("640028")[:2] == ["64001f", "f4001f"]
    assert preferred_labels(None)[0] == "42e01f"


def _offer(profiles: list[str]) -> str:
    pts = list(range(102, 102 + len(profiles)))
    lines = [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        f"m=video 9 UDP/TLS/RTP/SAVPF {' '.join(map(str, pts))}",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=recvonly",
        "a=rtcp-mux",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:" + "p" * 24,
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        "a=setup:actpass",
    ]
    for pt, plid in zip(pts, profiles, strict=True):
        lines += [
            f"a=rtpmap:{pt} H264/90000",
            f"a=fmtp:{pt} level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={plid}",
        ]
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize(
    ("camera", "offered", "chosen"),
    [
        ("640028", ["42001f", "42e01f", "4d001f", "64001f"], "64001f"),
        ("640028", ["42001f", "42e01f", "4d001f", "f4001f"], "f4001f"),  # Debian Chromium
        ("4d0029", ["42e01f", "4d001f"], "4d001f"),
        ("42e01f", ["42001f", "42e01f", "64001f"], "42e01f"),
        ("640028", ["42e01f"], "42e01f"),  # fallback: a label the browser offers
    ],
)
async def test_answer_carries_the_camera_profile(
    camera: str, offered: list[str], chosen: str
) -> None:
    pc = RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
        prefer_camera_profile(transceiver, camera)
        await pc.setRemoteDescription(RTCSessionDescription(_offer(offered), "offer"))
        answer = await pc.createAnswer()
        fmtp = [line for line in answer.sdp.splitlines() if "profile-level-id" in line]
        assert f"profile-level-id={chosen}" in fmtp[0]
    finally:
        await pc.close()


async def test_chromium_offer_gets_an_answer_without_payload_type_clashes() -> None:
    """Chromium 156's real offer numbers High 4:4:4 at 41 and RTX at 109."""
    from pathlib import Path

    offer = (Path(__file__).parent / "data" / "chromium156_offer.sdp").read_text()
    pc = RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
        prefer_camera_profile(transceiver, "640028")
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        answer = (await pc.createAnswer()).sdp
        rtpmaps = [line.split()[0] for line in answer.splitlines() if line.startswith("a=rtpmap:")]
        assert len(rtpmaps) == len(set(rtpmaps)), rtpmaps
        m_line = next(line for line in answer.splitlines() if line.startswith("m=video"))
        assert m_line.split()[3] == "41"  # High 4:4:4 (covers High), the offer's own number
        assert (
            "a=fmtp:41 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=f4001f"
            in answer
        )
    finally:
        await pc.close()

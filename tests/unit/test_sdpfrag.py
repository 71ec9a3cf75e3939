import pytest

from gateway.webrtc.sdpfrag import FragmentError, parse_sdpfrag

FRAG = """a=ice-ufrag:EsAw
a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1
m=video 9 UDP/TLS/RTP/SAVPF 0
a=mid:0
a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0
a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0
a=end-of-candidates
"""


def test_parses_candidates_with_mid() -> None:
    frag = parse_sdpfrag(FRAG)
    assert frag.ice_ufrag == "EsAw" and frag.ice_pwd == "P2uYro0UCOQ4zxjKXaWCBui1"
    assert [mid for mid, _ in frag.candidates] == ["0", "0"]
    assert frag.candidates[0][1].startswith("1387637174 1 udp")
    assert frag.end_of_candidates


@pytest.mark.parametrize(
    "body",
    [
        "garbage",
        "a=candidate:1 1 udp 1 192.0.2.1 x typ host",
        "a=candidate:1 1 udp 1 192.0.2.1 99999 typ host",
        "a=candidate:too short",
        "a=ice-ufrag:",
        "a=" + "x" * 20000,
    ],
)
def test_rejects_junk(body: str) -> None:
    with pytest.raises(FragmentError):
        parse_sdpfrag(body)

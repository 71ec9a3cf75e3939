"""A send worker's SRTP session, made from the key exported again from aiortc's DTLS
connection, protects exactly as the DTLS transport's own session does, on both sides of
the handshake (client and server)."""

from __future__ import annotations

import asyncio

from aiortc import RTCPeerConnection

from gateway.compat.aiortc import sending_key
from gateway.sendpath.srtp_keys import SrtpKey
from tests.rig.ice import loopback_candidates
from tests.rig.wait import wait_until


def _rtp(ssrc: int, sequence: int) -> bytes:
    header = bytes([0x80, 96]) + sequence.to_bytes(2, "big") + (1234).to_bytes(4, "big")
    return header + ssrc.to_bytes(4, "big") + bytes(range(200))


async def test_exported_keys_match_the_transports_own_on_both_sides(netns: object) -> None:
    with loopback_candidates():
        offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
        try:
            offerer.createDataChannel("keys")
            await offerer.setLocalDescription(await offerer.createOffer())
            await answerer.setRemoteDescription(offerer.localDescription)
            await answerer.setLocalDescription(await answerer.createAnswer())
            await offerer.setRemoteDescription(answerer.localDescription)
            await wait_until(
                lambda: offerer.connectionState == answerer.connectionState == "connected",
                timeout=30,
            )
            dtls = [pc.sctp.transport for pc in (offerer, answerer)]  # type: ignore[union-attr]
            assert sorted(t._role for t in dtls) == ["client", "server"]
            for transport in dtls:
                key = SrtpKey(*sending_key(transport))
                assert "key_and_salt" not in repr(key)
                ours = key.sending_session()
                for sequence in (1, 2, 65535):
                    packet = _rtp(0x1234, sequence)
                    assert ours.protect(packet) == transport._tx_srtp.protect(packet)
        finally:
            await asyncio.gather(offerer.close(), answerer.close())

"""The aiortc internals camgate's send loop relies on are still there (an aiortc upgrade
that changes them fails here, and camgate would fall back to aiortc's slower loop)."""

from __future__ import annotations

import inspect

from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.rtcdtlstransport import RTCDtlsTransport

from gateway.webrtc.fastsend import FastSender, fast_send_supported


async def test_sender_internals_are_present() -> None:
    pc = RTCPeerConnection()
    try:
        sender = pc.addTransceiver("video", direction="sendonly").sender
        assert fast_send_supported(sender) is None
        assert list(inspect.signature(RTCRtpSender._run_rtp).parameters) == ["self", "codec"]
        assert list(inspect.signature(RTCRtpSender._retransmit).parameters) == [
            "self",
            "sequence_number",
        ]
        dtls = sender.transport
        assert isinstance(dtls, RTCDtlsTransport)
        assert hasattr(dtls, "_tx_srtp") and hasattr(dtls, "_state")
        assert hasattr(dtls, "_RTCDtlsTransport__tx_packets")
        assert hasattr(dtls.transport, "_connection")
        assert hasattr(dtls.transport._connection, "_nominated")
    finally:
        await pc.close()


async def test_header_template_before_negotiation() -> None:
    pc = RTCPeerConnection()
    try:
        sender = pc.addTransceiver("video", direction="sendonly").sender

        async def no_frames(_codec: object) -> None:
            return None

        loop = FastSender(sender, no_frames)
        header, abs_offset = loop._header_template(102)
        # No header extensions negotiated yet: a plain 12-byte header with the SSRC.
        # (With mid and abs-send-time, the end-to-end tests decode what it sends.)
        assert len(header) == 12 and abs_offset is None and header[1] == 102
        assert int.from_bytes(header[8:12], "big") == sender._ssrc
    finally:
        await pc.close()

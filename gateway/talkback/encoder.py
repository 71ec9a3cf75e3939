"""The speaker's voice in the backchannel's codec: aiortc hands over decoded frames
(av.AudioFrame, 48 kHz Opus); PyAV resamples them to the camera's rate and channels and
encodes them into what one RTP packet carries (20 ms of G.711, or one AAC frame).

AAC costs real CPU: call `encode` off the event loop for it (`heavy` says so).
"""

from __future__ import annotations

import av

from gateway.talkback.rtp import aac_hbr_payload
from gateway.talkback.sdp import Backchannel

_ENCODERS = {"PCMU": "pcm_mulaw", "PCMA": "pcm_alaw", "AAC": "aac"}
AAC_BIT_RATE = 32_000  # plenty for a voice


class TalkEncoder:
    def __init__(self, backchannel: Backchannel) -> None:
        self.backchannel = backchannel
        aac = backchannel.codec == "AAC"
        layout = "mono" if backchannel.channels == 1 else "stereo"
        self.heavy = aac
        self._resampler = av.AudioResampler(
            format="fltp" if aac else "s16",
            layout=layout,
            rate=backchannel.clock_rate,
            frame_size=backchannel.samples_per_packet,
        )
        codec = av.CodecContext.create(_ENCODERS[backchannel.codec], "w")
        assert isinstance(codec, av.AudioCodecContext)
        codec.sample_rate = backchannel.clock_rate
        codec.layout = layout
        codec.format = "fltp" if aac else "s16"
        if aac:
            codec.bit_rate = AAC_BIT_RATE
        codec.open()
        self._codec = codec

    def encode(self, frame: av.AudioFrame) -> list[bytes]:
        """RTP payloads for `frame` (none while the resampler or encoder fills up)."""
        frame.pts = None  # the browser's timing is not ours: we stamp by sample count
        payloads: list[bytes] = []
        for chunk in self._resampler.resample(frame):
            for packet in self._codec.encode(chunk):
                payloads.append(self._payload(bytes(packet)))
        return payloads

    def _payload(self, data: bytes) -> bytes:
        bc = self.backchannel
        if bc.codec == "AAC":
            return aac_hbr_payload(data, bc.size_length, bc.index_length)
        return data

"""The audio track of an RTSP camera: RTP in, AudioPackets out, RTCP both ways.

Kept apart from the video path on purpose: whatever the camera sends on its audio
channel (truncated packets, the wrong payload type, garbage AU headers, hostile sizes)
is dropped and counted here, with at most one log line per interval, and never reaches
the video or ends the connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from gateway.media.audio import AudioFormat, AudioPacket
from gateway.media.rtcp import CaptureClock, build_receiver_report, parse_sender_reports
from gateway.media.rtp_audio import AudioDepacketizer, AudioPayloadError
from gateway.media.rtp_h264 import parse_rtp
from gateway.rtsp.sdp_audio import AudioTrack

log = logging.getLogger("camgate.rtsp")

DROP_LOG_INTERVAL_S = 10.0
_SEQ_MOD = 1 << 16
_REORDER_WINDOW = 64


class AudioReceiver:
    """One set-up audio track. Counters: packets_received, dropped (malformed or
    unusable packets), packets_lost (sequence gaps)."""

    def __init__(
        self,
        track: AudioTrack,
        audio_format: AudioFormat,
        emit: Callable[[AudioPacket], None],
        description: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.track = track
        self.format = audio_format
        self._emit = emit
        self._description = description
        self._clock = clock
        self._depacketizer = AudioDepacketizer(track.aac, latm=track.latm)
        self.capture_clock = CaptureClock(audio_format.clock_rate)
        self.packets_received = 0
        self.packets_lost = 0
        self._dropped = 0
        self.rtp_channel, self.rtcp_channel = 2, 3
        self.ssrc: int | None = None
        self.highest_seq: int | None = None  # extended, for receiver reports
        self.reported_seq = 0
        self.reported_lost = 0
        self._last_drop_log = float("-inf")
        self._drops_unlogged = 0

    def on_rtp(self, data: bytes) -> None:
        try:
            packet = parse_rtp(data)
            if packet.payload_type != self.track.payload_type:
                raise AudioPayloadError(f"payload type {packet.payload_type} on the audio track")
            self.packets_received += 1
            if not self._in_sequence(packet.ssrc, packet.sequence):
                return
            frames = self._depacketizer.push(packet.payload, packet.timestamp, packet.marker)
        except ValueError as exc:  # AudioPayloadError included
            self._drop(str(exc))
            return
        arrival = self._clock()
        for timestamp, payload in frames:
            capture = self.capture_clock.capture(timestamp & 0xFFFFFFFF)
            self._emit(AudioPacket(payload, timestamp, arrival, capture))

    def on_rtcp(self, data: bytes) -> None:
        for report in parse_sender_reports(data):
            if self.ssrc is None or report.ssrc == self.ssrc:
                self.capture_clock.update(report)

    def _in_sequence(self, ssrc: int, seq: int) -> bool:
        if self.highest_seq is None or ssrc != self.ssrc:
            if self.highest_seq is not None:
                self._depacketizer.reset()
                self.capture_clock.reset()  # a restarted stream has a new clock mapping
            self.ssrc = ssrc
            self.highest_seq = self.reported_seq = seq
            return True
        skipped = (seq - self.highest_seq - 1) % _SEQ_MOD
        if skipped >= _SEQ_MOD - _REORDER_WINDOW:
            return False  # late or duplicated
        if skipped:
            self._depacketizer.reset()
        if skipped < _SEQ_MOD // 2:
            self.packets_lost += skipped
            self.highest_seq += skipped + 1
        else:  # far behind: the camera renumbered its packets, count afresh
            self.highest_seq = self.reported_seq = seq
        return True

    @property
    def dropped(self) -> int:
        return self._dropped + self._depacketizer.abandoned

    def _drop(self, reason: str) -> None:
        self._dropped += 1
        now = self._clock()
        if now - self._last_drop_log < DROP_LOG_INTERVAL_S:
            self._drops_unlogged += 1
            return
        more = f" (and {self._drops_unlogged} more)" if self._drops_unlogged else ""
        log.warning("%s: audio packet dropped: %s%s", self._description, reason, more)
        self._last_drop_log, self._drops_unlogged = now, 0

    def receiver_report(self, own_ssrc: int) -> bytes:
        """Our RTCP receiver report about this track since the last one."""
        highest = self.highest_seq or 0
        expected = highest - self.reported_seq
        lost = self.packets_lost - self.reported_lost
        fraction = min(255, (lost << 8) // expected) if expected > 0 and lost > 0 else 0
        self.reported_seq, self.reported_lost = highest, self.packets_lost
        return build_receiver_report(own_ssrc, self.ssrc, fraction, self.packets_lost, highest)

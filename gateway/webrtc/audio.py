"""A viewer's audio m-line: the camera's sound, passed through untouched.

An offer with an audio m-line gets the camera's audio (`hub.subscribe_audio()`) when the
camera has audio camgate can send and the offer lists that codec: a sendonly audio
transceiver whose only codec is the camera's. Otherwise the audio m-line is answered
inactive and the video goes on as usual. On the fast send path each audio packet is one
RTP payload through the same loop as the video (gateway/webrtc/fastsend.py, no marker
bit); on the fallback path aiortc's sender packs each `av.Packet` as it is (its audio
encoders' `pack()`). Both kinds' sender reports use the camera's media clock
(gateway/webrtc/avsync.py).
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import SessionDescription

from gateway.audio.subscription import AudioSubscription
from gateway.hub import CameraHub, CameraState
from gateway.media.audio import AudioFormat, AudioPacket
from gateway.sendpath.rtppump import abs_send_time, ntp_now
from gateway.subscription import SubscriptionClosed
from gateway.webrtc.avsync import MediaClock, clock_of, ntp_of
from gateway.webrtc.fastsend import FastSender, Frame, SendWorkers

log = logging.getLogger("camgate.webrtc")

# How the RTP encoding names of AudioFormat.codec appear in SDP (mimeType is "audio/<name>").
_SDP_NAMES = {"OPUS": "opus", "PCMU": "PCMU", "PCMA": "PCMA"}
AUDIO_WAIT_S = 4.0
_PAYLOAD_LISTS_KEPT = 64  # audio packets whose one-payload list is shared by every viewer


def offered_audio(description: SessionDescription) -> bool:
    return any(m.kind == "audio" for m in description.media)


def offer_takes(description: SessionDescription, audio_format: AudioFormat) -> bool:
    """The offer's first audio m-line lists the codec `audio_format` is in."""
    name = _SDP_NAMES.get(audio_format.codec)
    for media in description.media:
        if media.kind == "audio":
            return name is not None and any(
                codec.mimeType.lower() == f"audio/{name.lower()}"
                and codec.clockRate == audio_format.clock_rate
                for codec in media.rtp.codecs
            )
    return False


class AudioPassthroughTrack(MediaStreamTrack):
    """An audio track whose frames are the camera's own encoded audio packets."""

    kind = "audio"

    def __init__(self, subscription: AudioSubscription) -> None:
        super().__init__()
        self.subscription = subscription
        self.time_base = Fraction(1, subscription.format.clock_rate)

    async def next_packet(self) -> AudioPacket:
        """The next packet; MediaStreamError once the track or its subscription ended."""
        if self.readyState != "live":
            raise MediaStreamError
        try:
            return await self.subscription.get()
        except SubscriptionClosed:
            self.stop()
            raise MediaStreamError from None

    async def recv(self) -> av.Packet:  # type: ignore[override]
        """For aiortc's own sender (the fallback path): the payload untouched."""
        audio = await self.next_packet()
        packet = av.Packet(audio.payload)
        packet.pts = audio.timestamp
        packet.time_base = self.time_base
        return packet

    def stop(self) -> None:
        self.subscription.close()
        super().stop()


class SharedFrames:
    """One Frame per audio packet for all of a camera's viewers: made once (its NTP time
    from the camera's media clock), and one `[payload]` list, so that send workers get
    each packet once (they recognise a frame by its payload list)."""

    def __init__(self, clock: MediaClock | None = None) -> None:
        self.clock = clock or MediaClock()
        self._frames: OrderedDict[int, tuple[AudioPacket, Frame]] = OrderedDict()
        self._sending_packet: AudioPacket | None = None
        self._sending: tuple[Frame, int, bytes] | None = None

    def of(self, packet: AudioPacket) -> Frame:
        entry = self._frames.get(id(packet))
        if entry is not None and entry[0] is packet:
            return entry[1]
        wall = self.clock.wall(packet.capture, packet.arrival)
        frame = Frame([packet.payload], packet.timestamp, ntp_of(wall))
        self._frames[id(packet)] = (packet, frame)
        if len(self._frames) > _PAYLOAD_LISTS_KEPT:
            self._frames.popitem(last=False)
        return frame

    def sending(self, packet: AudioPacket) -> tuple[Frame, int, bytes]:
        """(the packet's frame, now as NTP, its abs-send-time value), taken when the first
        listener sends `packet` and reused for the others of the same fan-out."""
        sending = self._sending
        if packet is not self._sending_packet or sending is None:
            now = ntp_now()
            sending = self._sending = (self.of(packet), now, abs_send_time(now))
            self._sending_packet = packet
        return sending  # the same tuple for every listener: no object per listener


_shared: weakref.WeakKeyDictionary[object, SharedFrames] = weakref.WeakKeyDictionary()


def attach_fast_audio_sender(
    sender: RTCRtpSender,
    track: AudioPassthroughTrack,
    frames: SharedFrames,
    workers: SendWorkers | None = None,
) -> FastSender:
    """Send `track`'s packets through camgate's own loop, one RTP payload each. They are
    pushed: the camera's audio fan-out hands each packet to every listener's sender in
    one go, and each sends it at once (50 packets a second would otherwise wake each
    viewer's task 50 times); what is the same for all of them is taken once per packet."""

    async def until_the_end() -> Frame:
        # Returns only what was queued before `deliver` was set; raises when it ends.
        return frames.of(await track.next_packet())

    fast = FastSender(sender, until_the_end, workers, marker_last=False)
    sending, push_one = frames.sending, fast.push_one

    def deliver(packet: AudioPacket) -> None:
        push_one(*sending(packet))

    track.subscription.deliver = deliver
    return fast


def add_audio_transceiver(
    pc: RTCPeerConnection,
    track: AudioPassthroughTrack,
    audio_format: AudioFormat,
    direction: str = "sendonly",
) -> RTCRtpTransceiver:
    """The viewer's audio transceiver, offering exactly the camera's codec. `direction`:
    "sendonly" for a listener; "sendrecv" where the viewer may also talk back."""
    transceiver = pc.addTransceiver(track, direction=direction)
    name = _SDP_NAMES[audio_format.codec].lower()
    transceiver.setCodecPreferences(
        [
            codec
            for codec in RTCRtpSender.getCapabilities("audio").codecs
            if codec.mimeType.lower() == f"audio/{name}"
            and codec.clockRate == audio_format.clock_rate
        ]
    )
    return transceiver


@dataclass
class ViewerAudio:
    """A viewer's audio: what sends it and how to end it."""

    track: AudioPassthroughTrack
    transceiver: RTCRtpTransceiver
    release: Callable[[], None]
    send_loop: FastSender | None = None


def decline_other_audio(
    pc: RTCPeerConnection, audio: ViewerAudio | None, keep: object = None
) -> None:
    """After the offer is applied: audio m-lines camgate sends nothing on are answered
    inactive (aiortc would answer recvonly to a sendrecv one), except `keep` (the one
    an admin talks on)."""
    for transceiver in pc.getTransceivers():
        if transceiver.kind != "audio" or transceiver is keep:
            continue
        if audio is None or transceiver is not audio.transceiver:
            transceiver.direction = "inactive"


def shared_frames(camera: CameraHub) -> SharedFrames:
    """The frames every audio viewer of `camera` shares (on the camera's media clock)."""
    shared = _shared.get(camera)
    if shared is None:
        shared = _shared[camera] = SharedFrames(clock_of(camera))
    return shared


async def camera_audio_format(hub: CameraHub) -> AudioFormat | None:
    """What the camera's listeners get; on a cold start wait briefly for the camera to
    connect (its audio is known from then on)."""
    if hub.audio.output_format is None and hub.state in (CameraState.CONNECTING, CameraState.IDLE):
        with contextlib.suppress(TimeoutError):
            await hub.wait_live(AUDIO_WAIT_S)
    return hub.audio.output_format


async def open_viewer_audio(
    pc: RTCPeerConnection,
    hub: CameraHub,
    offer: SessionDescription,
    *,
    fast: bool,
    workers: SendWorkers | None = None,
    direction: str = "sendonly",
) -> ViewerAudio | None:
    """Before the offer is applied: the camera's audio for a viewer whose offer has an
    audio m-line with the camera's codec; None (the m-line will be declined) otherwise."""
    if not offered_audio(offer):
        return None
    audio_format = await camera_audio_format(hub)
    if audio_format is None or not offer_takes(offer, audio_format):
        if audio_format is not None:
            log.info(
                "camera %s: a viewer's offer has no %s: video only",
                hub.name,
                audio_format.describe(),
            )
        return None
    subscription = hub.subscribe_audio()
    if subscription is None:
        return None
    track = AudioPassthroughTrack(subscription)

    def release() -> None:
        hub.unsubscribe_audio(subscription)
        track.stop()

    transceiver = add_audio_transceiver(pc, track, subscription.format, direction)
    audio = ViewerAudio(track, transceiver, release)
    if fast:
        audio.send_loop = attach_fast_audio_sender(
            transceiver.sender, track, shared_frames(hub), workers
        )
    return audio

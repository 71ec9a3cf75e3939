"""JPEG snapshots: the camera's latest keyframe, decoded once with PyAV and encoded as JPEG.

Never a stream transcode: one IDR picture is decoded per new keyframe, and only when
someone asks (HTTP, MQTT). The picture is at most one GOP old. Decoding runs in a worker
thread so the event loop (every viewer's video) never waits for it.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
from dataclasses import dataclass

import av

from gateway.hub import CameraHub, CameraState
from gateway.media.accessunit import AccessUnit
from gateway.media.h264 import nal_type

log = logging.getLogger("camgate.snapshot")

# FFmpeg's MJPEG quantiser (2 best .. 31 worst): 4 is visually clean at about 1/10 of
# the raw size (~100 KB for 1080p).
JPEG_QSCALE = 4
DEFAULT_TIMEOUT_S = 15.0  # connect + the camera's next keyframe (GOPs run up to ~10 s)


class SnapshotError(Exception):
    """No picture to be had; the message is safe to show (never a credential)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    jpeg: bytes
    width: int
    height: int


def keyframe_to_jpeg(unit: AccessUnit, qscale: int = JPEG_QSCALE) -> Snapshot:
    """Decode one IDR access unit (SPS/PPS in band) and encode it as a baseline JPEG."""
    decoder = av.CodecContext.create("h264", "r")
    try:
        frames = decoder.decode(av.Packet(unit.annexb()))
        frames += decoder.decode(None)  # a decoder with reorder delay holds the picture
    except av.FFmpegError as exc:
        log.info("undecodable keyframe (%s); its NAL units: %s", exc, nal_outline(unit))
        raise SnapshotError(f"the camera's keyframe could not be decoded: {exc}") from None
    if not frames:
        log.info("keyframe decoded to no picture; its NAL units: %s", nal_outline(unit))
        raise SnapshotError("the camera's keyframe could not be decoded")
    picture = frames[0].reformat(format="yuvj420p")  # full-range YUV, as JPEG expects
    picture.pts = 0
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = picture.width, picture.height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = fractions.Fraction(1, 1)
    encoder.options = {"qmin": str(qscale), "qmax": str(qscale)}
    packets = encoder.encode(picture) + encoder.encode(None)
    return Snapshot(b"".join(bytes(p) for p in packets), picture.width, picture.height)


def nal_outline(unit: AccessUnit) -> str:
    """`type:size` of each NAL unit (never their bytes): what a damaged picture held."""
    return " ".join(f"{nal_type(n) if n else '-'}:{len(n)}" for n in unit.nals)


class Snapshotter:
    """Snapshots of one camera; concurrent requests share one decode per keyframe."""

    def __init__(self, hub: CameraHub, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.hub = hub
        self.timeout_s = timeout_s
        self._lock = asyncio.Lock()
        self._cached: tuple[AccessUnit, Snapshot] | None = None
        self.decodes = 0  # keyframes decoded (tests, metrics)

    async def take(self, damaged: AccessUnit | None = None) -> Snapshot:
        """The latest keyframe as JPEG; wakes an idle camera for it (then lets it linger).
        `damaged`: a keyframe already found undecodable, never tried again. Raises
        SnapshotError with a readable reason."""
        timeout = self.timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        failures = 0
        async with self._lock:
            with self.hub.hold():
                while True:
                    try:
                        unit = await self.hub.keyframe(deadline - loop.time(), damaged)
                    except TimeoutError:
                        raise SnapshotError(self._no_picture_reason(timeout)) from None
                    try:
                        return await self._jpeg_of(unit)
                    except SnapshotError as exc:
                        failures += 1
                        if failures > 1:
                            raise  # two bad keyframes in a row: say so
                        # One damaged keyframe (a camera glitch) must not fail the
                        # request while the next one can still arrive in time.
                        log.warning("camera %s: %s; waiting for the next one", self.hub.name, exc)
                        damaged = unit

    async def latest(self) -> Snapshot:
        """The newest picture the gateway has, at once, even of an idle camera (a tile's
        poster while its video starts); take() when it never had one."""
        unit = self.hub.last_keyframe
        if unit is not None:
            try:
                async with self._lock:
                    return await self._jpeg_of(unit)
            except SnapshotError as exc:  # a damaged one: the camera's next will do
                log.warning("camera %s: %s; taking a fresh one", self.hub.name, exc)
                return await self.take(damaged=unit)
        return await self.take()

    async def _jpeg_of(self, unit: AccessUnit) -> Snapshot:
        """One decode per keyframe, shared by everyone asking (the caller holds the lock)."""
        if self._cached is not None and self._cached[0] is unit:
            return self._cached[1]
        snapshot = await asyncio.to_thread(keyframe_to_jpeg, unit)
        self.decodes += 1
        self._cached = (unit, snapshot)
        return snapshot

    def _no_picture_reason(self, timeout: float) -> str:
        if self.hub.state is not CameraState.LIVE and self.hub.error:
            return f"camera {self.hub.name} is {self.hub.state.value}: {self.hub.error}"
        return f"no keyframe from camera {self.hub.name} within {timeout:g} s"

"""One camera's media clock: what its viewers' RTCP sender reports map RTP time to.

A browser lip-syncs a viewer's audio and video by their sender reports: each maps an RTP
timestamp of its stream to an NTP time, and the two streams are in sync when both speak
of the same clock. Every picture and audio packet carries when it was captured (`capture`,
the camera's wall clock from its own RTCP sender reports, or the demo's clock) and when
it reached the gateway (`arrival`, monotonic). This clock turns either into Unix seconds
the same way for every sender of a camera:

- with `capture`: capture + one offset per camera, fixed at the first captured packet
  (its arrival on the gateway's wall clock minus its capture time), so the camera's own
  timing between sound and picture is kept exactly, and NTP stays close to now;
- without: arrival on the gateway's wall clock (camgate's best knowledge: what arrives
  together was captured together).
"""

from __future__ import annotations

import time
import weakref

from gateway.sendpath.rtppump import NTP_UNIX_OFFSET_S


class MediaClock:
    def __init__(self) -> None:
        self._monotonic_to_wall = time.time() - time.monotonic()
        self._capture_offset: float | None = None

    def wall(self, capture: float | None, arrival: float) -> float:
        """Unix seconds a packet's RTP timestamp stands for in sender reports."""
        arrived = arrival + self._monotonic_to_wall
        if capture is None:
            return arrived
        if self._capture_offset is None:
            self._capture_offset = arrived - capture
        return capture + self._capture_offset


def ntp_of(wall: float) -> int:
    """Unix seconds as a 64-bit NTP timestamp."""
    return int((wall + NTP_UNIX_OFFSET_S) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


_clocks: weakref.WeakKeyDictionary[object, MediaClock] = weakref.WeakKeyDictionary()


def clock_of(camera: object) -> MediaClock:
    """The clock every sender of `camera` (its CameraHub) shares."""
    clock = _clocks.get(camera)
    if clock is None:
        clock = _clocks[camera] = MediaClock()
    return clock

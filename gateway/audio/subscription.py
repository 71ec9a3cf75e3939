"""One listener's bounded queue of a camera's audio packets.

Audio is small and steady (50 packets a second): a listener that falls behind loses
its oldest packets, never the camera or another listener.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from gateway.media.audio import AudioFormat, AudioPacket
from gateway.subscription import SubscriptionClosed

# 1 s of 20 ms packets: rides out a hiccup; a stuck listener hears the present, not the past.
DEFAULT_LIMIT = 50


class AudioSubscription:
    def __init__(self, audio_format: AudioFormat, limit: int = DEFAULT_LIMIT) -> None:
        self.format = audio_format  # what this listener negotiated
        self._limit = limit
        self._queue: deque[AudioPacket] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False
        self.dropped = 0
        # Set: each packet goes straight to it, synchronously, instead of to the queue (a
        # sender that sends at once: no task wake-up per packet); get() then only ends.
        self.deliver: Callable[[AudioPacket], None] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def push(self, packet: AudioPacket) -> None:
        """Called by the fan-out for every packet (synchronous, O(1))."""
        if self._closed:
            return
        if self.deliver is not None:
            self.deliver(packet)
            return
        if len(self._queue) >= self._limit:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(packet)
        self._wakeup.set()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    async def get(self) -> AudioPacket:
        """The next packet; SubscriptionClosed once the listener or the camera's audio
        went away (e.g. the camera changed its audio codec)."""
        while True:
            if self._closed:
                raise SubscriptionClosed
            if self._queue:
                return self._queue.popleft()
            self._wakeup.clear()
            await self._wakeup.wait()

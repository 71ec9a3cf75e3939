"""A WHEP viewer that talks back, as the viewer page does (docs/audio.md): its offer has a
sendrecv audio m-line carrying a WAV file as its "microphone" (aiortc's MediaPlayer, in
real time) and a "talk" data channel for {"talk": "start"|"stop"}."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiortc import RTCDataChannel
from aiortc.contrib.media import MediaPlayer

from tests.rig.whep_client import WhepViewer


class Talker(WhepViewer):
    def __init__(self, base_url: str, camera: str, voice: Path, **kwargs: Any) -> None:
        super().__init__(base_url, camera, **kwargs)
        self.player = MediaPlayer(str(voice))
        self.talk_channel: RTCDataChannel | None = None
        self.talk_replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.hello: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._talk_open = asyncio.Event()

    async def _local_offer(self) -> str:
        assert self.player.audio is not None
        self.pc.addTransceiver(self.player.audio, direction="sendrecv")
        channel = self.pc.createDataChannel("talk", ordered=True)
        channel.on("open", self._talk_open.set)
        channel.on("message", self._on_talk_message)
        self.talk_channel = channel
        return await super()._local_offer()

    def _on_talk_message(self, message: str | bytes) -> None:
        reply = json.loads(message)
        if not self.hello.done():  # the channel's first message: can this camera talk?
            self.hello.set_result(reply)
        else:
            self.talk_replies.put_nowait(reply)

    async def talk(self, command: str, timeout: float = 20.0) -> dict[str, Any]:
        """Send {"talk": command}; the next reply."""
        async with asyncio.timeout(timeout):
            await self._talk_open.wait()
            await self.hello
            assert self.talk_channel is not None
            self.talk_channel.send(json.dumps({"talk": command}))
            return await self.talk_replies.get()

    async def close(self) -> None:
        if self.player.audio is not None:
            self.player.audio.stop()
        await super().close()

"""The outside world on the broker: a second MQTT client (aiomqtt/paho) that publishes
commands and records every message it sees, with waits on what arrives."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiomqtt


@dataclass(frozen=True)
class Seen:
    topic: str
    payload: bytes
    retain: bool
    at: float  # time.monotonic() on arrival

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", "replace")


class MqttProbe:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str = "probe",
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.username, self.password, self.tls = username, password, tls
        self.seen: list[Seen] = []
        self._changed = asyncio.Condition()
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> MqttProbe:
        self._client = await self._stack.enter_async_context(
            aiomqtt.Client(
                self.host,
                self.port,
                identifier=self.client_id,
                username=self.username,
                password=self.password,
                tls_context=self.tls,
                timeout=10,
            )
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._reader
        with contextlib.suppress(aiomqtt.MqttError):
            await self._stack.aclose()

    @property
    def client(self) -> aiomqtt.Client:
        assert self._client is not None, "use `async with MqttProbe(...)`"
        return self._client

    async def subscribe(self, *topics: str) -> None:
        for topic in topics:
            await self.client.subscribe(topic, qos=1)

    async def publish(self, topic: str, payload: str | bytes, *, retain: bool = False) -> float:
        """Publish (QoS 1); returns time.monotonic() just before the publish."""
        sent_at = time.monotonic()
        await self.client.publish(topic, payload, qos=1, retain=retain)
        return sent_at

    async def _read(self) -> None:
        async for message in self.client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            seen = Seen(message.topic.value, payload, bool(message.retain), time.monotonic())
            async with self._changed:
                self.seen.append(seen)
                self._changed.notify_all()

    def on(self, topic: str, after: int = 0) -> list[Seen]:
        return [s for s in self.seen[after:] if s.topic == topic]

    def last(self, topic: str) -> Seen | None:
        found = self.on(topic)
        return found[-1] if found else None

    async def wait(
        self,
        topic: str,
        match: Callable[[Seen], bool] = lambda _: True,
        *,
        after: int = 0,
        timeout: float = 20.0,
    ) -> Seen:
        """The first message on `topic` (from index `after` of `seen`) that matches."""

        def found() -> Seen | None:
            return next((s for s in self.on(topic, after) if match(s)), None)

        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: found() is not None)
        result = found()
        assert result is not None
        return result

    async def wait_count(
        self, predicate: Callable[[Seen], bool], count: int, *, timeout: float = 20.0
    ) -> list[Seen]:
        def matching() -> list[Seen]:
            return [s for s in self.seen if predicate(s)]

        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(matching()) >= count)
        return matching()

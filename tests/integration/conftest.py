"""Fixtures that run a real camgate gateway in the test's own network namespace."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gateway.app import Gateway
from gateway.config import parse_config

GatewayFactory = Callable[..., Awaitable["RunningGateway"]]


class RunningGateway:
    def __init__(self, gateway: Gateway, port: int) -> None:
        self.gateway = gateway
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"

    def hub(self, name: str):
        return self.gateway.hubs[name]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cameras_yaml(cameras: list[dict[str, object]]) -> str:
    lines = ["cameras:"]
    for cam in cameras:
        lines.append(f"  - name: {cam['name']}")
        for key, value in cam.items():
            if key != "name":
                text = str(value).lower() if isinstance(value, bool) else f"'{value}'"
                lines.append(f"    {key}: {text}")
    return "\n".join(lines)


@pytest.fixture
async def start_gateway() -> AsyncIterator[GatewayFactory]:
    """`gw = await start_gateway(cameras=[{...}], extra_yaml="")`: a gateway on loopback
    whose WebRTC candidates are 127.0.0.1 (the only address in the test's namespace)."""
    running: list[Gateway] = []

    async def start(
        cameras: list[dict[str, object]] | None = None, extra_yaml: str = ""
    ) -> RunningGateway:
        port = free_port()
        cams = cameras or [{"name": "demo", "source": "demo", "preload": True}]
        text = (
            f"listen: 127.0.0.1:{port}\n"
            "webrtc: {candidates: {addresses: [127.0.0.1]}}\n"
            f"{cameras_yaml(cams)}\n{extra_yaml}"
        )
        gateway = Gateway.from_config(parse_config(text))
        running.append(gateway)
        await gateway.start()
        return RunningGateway(gateway, port)

    yield start
    for gateway in running:
        await gateway.stop()

"""Fixtures that run a real camgate gateway in the test's own network namespace."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.config import parse_config
from tests.rig import prereq
from tests.rig.backchannel import CameraFactory, backchannel_cameras
from tests.rig.net import free_port

GatewayFactory = Callable[..., Awaitable["RunningGateway"]]


class RunningGateway:
    def __init__(self, gateway: Gateway, port: int) -> None:
        self.gateway = gateway
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"

    def hub(self, name: str):
        return self.gateway.hubs[name]


@pytest.fixture
async def start_gateway(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """`gw = await start_gateway(cameras=[{...}], ptz={...})`: a gateway on loopback
    whose WebRTC candidates are 127.0.0.1 (the only address in the test's namespace).
    Auth is off unless the test passes `auth=...`; the state directory is the test's."""
    running: list[Gateway] = []

    async def start(cameras: list[dict[str, Any]] | None = None, **settings: Any) -> RunningGateway:
        port = free_port()
        config = {
            "listen": f"127.0.0.1:{port}",
            "webrtc": {"candidates": {"addresses": ["127.0.0.1"]}},
            "cameras": cameras or [{"name": "demo", "source": "demo", "preload": True}],
            "auth": False,
            "state_dir": str(tmp_path / "state"),
            **settings,
        }
        text = json.dumps(config)  # JSON is YAML: nested camera keys (onvif: {...}) work
        gateway = Gateway.from_config(parse_config(text))
        running.append(gateway)
        await gateway.start()
        return RunningGateway(gateway, port)

    yield start
    for gateway in running:
        await gateway.stop()


@pytest.fixture
async def cameras(tmp_path: Path) -> AsyncIterator[CameraFactory]:
    """ONVIF cameras with an audio backchannel (tests/rig/backchannel.py), for the talk
    back tests: `camera = await cameras(codec="pcma")`."""
    prereq.require_rtsp_server()
    async with backchannel_cameras(tmp_path) as start:
        yield start

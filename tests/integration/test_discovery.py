"""WS-Discovery end to end inside the test's own network namespace (only `lo`, multicast
enabled on it by the rig): `camgate discover` as a subprocess and GET /api/discover find the
rig's responder, which answers for an ONVIF test device."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import yaml
from playwright.async_api import Browser, ConsoleMessage

from gateway.config import parse_config
from tests.integration.conftest import GatewayFactory
from tests.rig.netns import NetNamespace
from tests.rig.onvif_device import OnvifTestDevice
from tests.rig.wsdiscovery_responder import (
    WSA_2005,
    WSD_2009,
    WsDiscoveryResponder,
    enable_loopback_multicast,
)

NAME, MODEL = "Porch PTZ", "TestPTZ-2000"


@pytest.fixture
async def device(netns: NetNamespace | None) -> AsyncIterator[OnvifTestDevice]:
    if netns is None:
        pytest.skip("multicast on lo needs the test's own network namespace (run as root)")
    enable_loopback_multicast()
    dev = OnvifTestDevice(name=NAME, model=MODEL)
    await dev.start()
    yield dev
    await dev.stop()


@pytest.fixture
async def responder(device: OnvifTestDevice) -> AsyncIterator[WsDiscoveryResponder]:
    async with WsDiscoveryResponder(device.xaddr, name=NAME, model=MODEL) as r:
        yield r


async def camgate(*args: str) -> tuple[int, str, str]:
    """Run the CLI without blocking the loop (the responder answers from this loop)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def assert_valid_snippet(snippet: str, device: OnvifTestDevice) -> None:
    [camera] = yaml.safe_load(snippet)
    assert camera == {
        "name": "porch-ptz",
        "onvif": {
            "host": device.host,
            "port": device.port,
            "username": "admin",
            "password": "CHANGE-ME",
        },
    }
    config = parse_config("cameras:\n" + textwrap.indent(snippet, "  "))
    assert config.cameras[0].name == "porch-ptz"


@pytest.mark.parametrize("interface_args", [("--interface", "lo"), ()], ids=["lo", "default"])
async def test_cli_finds_the_device(
    device: OnvifTestDevice, responder: WsDiscoveryResponder, interface_args: tuple[str, ...]
) -> None:
    code, out, err = await camgate("discover", "--timeout", "1", *interface_args)
    assert code == 0, err
    assert "lo (127.0.0.1)" in out
    assert "1 device found" in out
    row = next(line for line in out.splitlines() if line.startswith(f"127.0.0.1:{device.port}"))
    assert NAME in row and MODEL in row and row.rstrip().endswith("yes")  # type/ptz scope
    snippet = out[out.index("- name: ") :]
    assert_valid_snippet(snippet, device)
    assert len(responder.probes) == 2  # the Probe and its SOAP-over-UDP repeat


async def test_cli_with_nothing_answering_says_so_and_exits_0(device: OnvifTestDevice) -> None:
    code, out, _ = await camgate("discover", "--timeout", "0.5")
    assert code == 0
    assert "No ONVIF devices answered" in out


@pytest.mark.parametrize(
    "variant",
    [{"wrapper": False}, {"wrapper": False, "namespaces": (WSD_2009, WSA_2005)}],
    ids=["no-wrapper", "no-wrapper-wsd-1.1"],
)
async def test_cli_finds_a_device_whose_probe_match_stands_alone(
    device: OnvifTestDevice, variant: dict[str, Any]
) -> None:
    async with WsDiscoveryResponder(device.xaddr, name=NAME, model=MODEL, **variant):
        code, out, err = await camgate("discover", "--timeout", "1")
    assert code == 0, err
    assert "1 device found" in out and "could not be read" not in out
    assert_valid_snippet(out[out.index("- name: ") :], device)


async def test_cli_shows_replies_it_cannot_read_instead_of_saying_none_came(
    device: OnvifTestDevice,
) -> None:
    garbled = (
        b'<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
        b"<s:Body><ProbeMatch>\x1b[31m<XAddrs>http://192.0.2.9/onvif"  # cut short, with ESC
    )
    async with WsDiscoveryResponder(device.xaddr, raw_reply=garbled):
        code, out, err = await camgate("discover", "--timeout", "1")
    assert code == 0, err
    assert "No ONVIF devices answered" not in out
    assert "1 reply came back but could not be read" in out
    assert "from 127.0.0.1: not well-formed XML" in out
    assert "<s:Body><ProbeMatch> [31m<XAddrs>http://192.0.2.9/onvif" in out  # ESC made a space
    assert "\x1b" not in out


async def test_cli_rejects_an_unknown_interface(netns: NetNamespace | None) -> None:
    code, out, err = await camgate("discover", "--interface", "eth7")
    assert code == 2 and out == ""
    assert "no IPv4 interface 'eth7'" in err and "Traceback" not in err


async def test_api_finds_the_device_and_shares_one_probe(
    device: OnvifTestDevice, responder: WsDiscoveryResponder, start_gateway: GatewayFactory
) -> None:
    gw = await start_gateway()
    url = gw.base_url + "/api/discover"
    async with aiohttp.ClientSession() as http:

        async def get(query: str) -> tuple[int, Any]:
            async with http.get(url + query) as response:
                return response.status, await response.json()

        loop = asyncio.get_running_loop()
        started = loop.time()
        answers = await asyncio.gather(get("?timeout=1"), get("?timeout=1"), get("?timeout=5"))
        elapsed = loop.time() - started
        assert [status for status, _ in answers] == [200, 200, 200]
        assert answers[0][1] == answers[1][1] == answers[2][1]
        assert elapsed < 3, "the three requests did not share the first probe"
        assert len({_message_id(p) for p in responder.probes}) == 1

        [record] = answers[0][1]
        assert record["address"] == f"127.0.0.1:{device.port}"
        assert record["xaddr"] == device.xaddr
        assert (record["name"], record["hardware"], record["ptz"]) == (NAME, MODEL, True)
        assert record["endpoint"] == responder.endpoint
        assert_valid_snippet(record["snippet"], device)

        assert await get("?timeout=1&interface=lo") == answers[0]
        status, body = await get("?timeout=soon")
        assert status == 400 and "timeout" in body["error"]
        status, body = await get("?interface=eth7")
        assert status == 400 and "eth7" in body["error"]


def _message_id(datagram: bytes) -> str:
    start = datagram.index(b"MessageID>") + len(b"MessageID>")
    return datagram[start : datagram.index(b"<", start)].decode()


@pytest.mark.browser
async def test_add_camera_panel_lists_the_device_and_copies_its_snippet(
    device: OnvifTestDevice,
    responder: WsDiscoveryResponder,
    start_gateway: GatewayFactory,
    chromium: Browser,
) -> None:
    gw = await start_gateway()
    context = await chromium.new_context(bypass_csp=True)
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gw.base_url)
    page = await context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", on_console)
    await page.goto(gw.base_url + "/")
    await page.click(".add-camera")
    card = page.locator(f'#discover li.discover-device[data-address="127.0.0.1:{device.port}"]')
    await card.wait_for(timeout=10_000)
    assert NAME in await card.inner_text() and MODEL in await card.inner_text()
    assert "Found 1 ONVIF camera" in await page.locator("#discover .discover-status").inner_text()
    snippet = await card.locator(".discover-snippet").inner_text()
    assert_valid_snippet(snippet + "\n", device)
    await card.locator(".discover-copy").click()
    await page.wait_for_selector('.discover-copy[data-copied="yes"]')
    assert await page.evaluate("navigator.clipboard.readText()") == snippet + "\n"
    await page.keyboard.press("Escape")
    assert not await page.locator("#discover").is_visible()
    assert problems == []

"""Headless Debian Chromium driven by Playwright (never `playwright install`)."""

from __future__ import annotations

from playwright.async_api import Browser, Playwright

from tests.rig.prereq import CHROMIUM

# From shared/DESIGN.md "Test rig facts". Playwright's launch() adds a fresh
# --user-data-dir of its own, so that one is not listed.
CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
)


async def launch_chromium(playwright: Playwright, *extra_args: str) -> Browser:
    return await playwright.chromium.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args], headless=True
    )

"""Headless Debian Chromium driven by Playwright (never `playwright install`)."""

from __future__ import annotations

from playwright.async_api import Browser, Playwright

from tests.rig.prereq import CHROMIUM

# Flags that let Debian's Chromium run headless as root on a machine without network:
# no background or component-update traffic, loopback allowed for WebRTC, local addresses
# not hidden behind mDNS names. Playwright's launch() adds a fresh --user-data-dir of its
# own, so that one is not listed.
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

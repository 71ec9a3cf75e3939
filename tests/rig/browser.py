"""Headless Debian Chromium driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

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


async def launch_chromium(
    playwright: Playwright,
    *extra_args: str,
    namespace: str | None = None,
    wrapper_dir: Path | None = None,
) -> Browser:
    """Chromium in the caller's network namespace, or in the named one (`ip netns add`):
    then it runs through a wrapper script written to `wrapper_dir`, which Playwright starts
    as the browser (it talks to it over inherited pipes, which `ip netns exec` keeps)."""
    executable = CHROMIUM
    if namespace is not None:
        if wrapper_dir is None:
            raise ValueError("a namespaced Chromium needs a wrapper_dir for its start script")
        executable = str(_namespaced_chromium(namespace, wrapper_dir))
    return await playwright.chromium.launch(
        executable_path=executable, args=[*CHROMIUM_ARGS, *extra_args], headless=True
    )


def _namespaced_chromium(namespace: str, directory: Path) -> Path:
    script = directory / f"chromium-in-{namespace}"
    script.write_text(f'#!/bin/sh\nexec ip netns exec {shlex.quote(namespace)} {CHROMIUM} "$@"\n')
    os.chmod(script, 0o755)
    return script

"""Time to first frame in headless Chromium: fresh page per join, WHEP POST -> first frame.

Joins start at random moments within the GOP. The page (bench/ttff.html) is served
from its own origin and reaches the gateway through CORS, as a third-party WHEP player.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import Browser, async_playwright

from bench.stats import summary
from tests.rig.browser import launch_chromium

PAGE = Path(__file__).with_name("ttff.html")
PAGE_PORT = 18090
JOIN_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class TtffSettings:
    joins: int = 12
    warmup_joins: int = 1  # not counted: first-use costs in Chromium and the gateway


@dataclass
class TtffResult:
    target: str
    gop_s: float
    joins: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rendered_ms(self) -> list[float]:
        return [j["rendered_ms"] for j in self.joins if j.get("rendered_ms") is not None]

    @property
    def failures(self) -> int:
        return sum(1 for j in self.joins if j.get("rendered_ms") is None)

    def as_dict(self) -> dict[str, Any]:
        def pick(key: str) -> list[float]:
            return [j[key] for j in self.joins if j.get(key) is not None]

        return {
            **asdict(self),
            "failures": self.failures,
            "rendered_ms": summary(self.rendered_ms),
            "decoded_ms": summary(pick("decoded_ms")),
            "connected_ms": summary(pick("connected_ms")),
            "answer_ms": summary(pick("answer_ms")),
        }


class PageServer:
    """Serves the bench page from its own origin on loopback."""

    def __init__(self, port: int = PAGE_PORT) -> None:
        self.url = f"http://127.0.0.1:{port}/ttff.html"
        self._port = port
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> PageServer:
        app = web.Application()

        async def page(_request: web.Request) -> web.FileResponse:
            return web.FileResponse(PAGE)

        app.router.add_get("/ttff.html", page)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self._port).start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class Chromium:
    """One headless Chromium for all joins (each join gets a fresh context and page)."""

    def __init__(self) -> None:
        self._playwright: Any = None
        self.browser: Browser | None = None

    async def __aenter__(self) -> Chromium:
        self._playwright = await async_playwright().start()
        self.browser = await launch_chromium(self._playwright)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if self.browser is not None:
                await self.browser.close()
        finally:
            await self._playwright.stop()


async def join_once(browser: Browser, page_url: str, whep_url: str) -> dict[str, Any]:
    context = await browser.new_context()
    try:
        page = await context.new_page()
        page.set_default_timeout(JOIN_TIMEOUT_MS + 5_000)
        await page.goto(page_url)
        try:
            result = await page.evaluate(
                "([url, timeout]) => window.benchJoin(url, timeout)", [whep_url, JOIN_TIMEOUT_MS]
            )
        finally:
            await page.evaluate("() => window.benchLeave()")
        return dict(result)
    except Exception as exc:  # a failed join is a data point, not the end of the run
        return {"error": str(exc).splitlines()[0][:200]}
    finally:
        await context.close()


async def measure_ttff(
    chromium: Chromium,
    page_url: str,
    target: str,
    whep_url: str,
    gop_s: float,
    settings: TtffSettings,
    rng: random.Random,
) -> TtffResult:
    assert chromium.browser is not None
    result = TtffResult(target=target, gop_s=gop_s)
    for n in range(settings.warmup_joins + settings.joins):
        await asyncio.sleep(rng.uniform(0.0, gop_s))  # a random moment within the GOP
        joined = await join_once(chromium.browser, page_url, whep_url)
        if n >= settings.warmup_joins:
            result.joins.append(joined)
    return result

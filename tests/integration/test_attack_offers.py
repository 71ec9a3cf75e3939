"""Mutated WHEP offers: a real Chromium offer with lines deleted, duplicated, garbled,
bad fingerprints, missing ICE credentials, odd m-lines, bad rtpmap/fmtp and huge values.
Every one is answered 201 or refused with a 4xx and a message; none is a 500 or leaves
a traceback in the log; the viewer already playing never notices."""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from tests.integration.conftest import GatewayFactory
from tests.rig.sdp_mutator import mutants
from tests.rig.whep_client import WhepViewer

pytestmark = pytest.mark.attack

OFFER = Path(__file__).parents[1] / "unit" / "data" / "chromium156_offer.sdp"
COUNT = int(os.environ.get("CAMGATE_MUTANTS", "2000"))


def without_candidates(sdp: str) -> str:
    # No candidates: nothing is ever sent anywhere for an offer that is accepted.
    return "".join(line for line in sdp.splitlines(True) if not line.startswith("a=candidate"))


async def test_mutated_offers_get_201_or_a_clear_4xx(
    start_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    gw = await start_gateway()
    viewer = WhepViewer(gw.base_url, "demo")
    await viewer.start()
    await viewer.wait_frames(5, timeout=30)
    offer = without_candidates(OFFER.read_text())
    statuses: Counter[int] = Counter()
    messages: Counter[str] = Counter()
    url = gw.base_url + "/api/cameras/demo/whep"
    async with aiohttp.ClientSession(headers={"Content-Type": "application/sdp"}) as http:
        for number, mutant in enumerate(mutants(offer, COUNT)):
            body = mutant.encode("utf-8", "surrogatepass")
            async with http.post(url, data=body) as response:
                statuses[response.status] += 1
                if response.status == 201:
                    location = response.headers["Location"]
                    async with http.delete(gw.base_url + location) as deleted:
                        assert deleted.status == 200
                    continue
                assert 400 <= response.status < 500, (number, response.status, mutant)
                error = (await response.json())["error"]
                assert isinstance(error, str) and error, (number, mutant)
                messages[error] += 1
    print(dict(statuses), messages.most_common())
    frames = viewer.frames_received
    await viewer.wait_frames(frames + 20, timeout=30)  # the real viewer never noticed
    await viewer.close()
    noisy = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not noisy, [(r.name, r.getMessage()) for r in noisy[:5]]


async def test_trickled_candidates_are_capped_per_session(start_gateway: GatewayFactory) -> None:
    """Each remote candidate makes the gateway send connectivity checks to it: a client
    must not point an unbounded number of them anywhere (here: closed loopback ports)."""
    gw = await start_gateway()
    offer = without_candidates(OFFER.read_text())
    async with aiohttp.ClientSession() as http:
        async with http.post(
            gw.base_url + "/api/cameras/demo/whep",
            data=offer,
            headers={"Content-Type": "application/sdp"},
        ) as response:
            assert response.status == 201
            session_url = gw.base_url + response.headers["Location"]
        statuses = []
        for batch in range(3):
            frag = "a=mid:0\r\n" + "".join(
                f"a=candidate:{n} 1 udp 2122260223 127.0.0.1 {40000 + n} typ host\r\n"
                for n in range(batch * 32, batch * 32 + 32)
            )
            async with http.patch(
                session_url, data=frag, headers={"Content-Type": "application/trickle-ice-sdpfrag"}
            ) as response:
                statuses.append(response.status)
                if response.status == 422:
                    assert "at most 64 candidates" in (await response.json())["error"]
        assert statuses == [204, 204, 422]

"""The start-up check: is every private name camgate relies on still where it was?

Run once per gateway (`WhepSessions.check_libraries`), logged once, shown in
/api/health. Its verdict picks the send path for every viewer:
- "fast": camgate's own RTP loop (gateway/webrtc/fastsend.py), needing all of
  gateway/compat/aiortc.py;
- "fallback": aiortc's own loop fed through its public API (gateway/webrtc/passthrough.py),
  taken when any of those names is missing, or when CAMGATE_SEND_PATH=fallback.
What is missing of pylibsrtp (SRTP in place) or aiomqtt (TCP_QUICKACK) only costs
speed where it is used, and what is missing of the module-level names in
gateway/compat/globals.py or of the RTCP tap (the per-viewer congestion estimate) switches
off the one feature that needs it: both are listed too.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import pylibsrtp

from gateway.compat import aiortc as aiortc_compat
from gateway.compat import globals as globals_compat
from gateway.compat import mqtt as mqtt_compat
from gateway.compat import srtp as srtp_compat

log = logging.getLogger("camgate.compat")

FAST, FALLBACK = "fast", "fallback"
FORCE_ENV = "CAMGATE_SEND_PATH"  # "fallback": aiortc's public API even when all is there


@dataclass(frozen=True)
class CompatReport:
    send_path: str  # FAST or FALLBACK
    missing: tuple[str, ...] = ()  # every private name not found, library-qualified
    forced: bool = False  # FALLBACK chosen by CAMGATE_SEND_PATH, not by what is missing

    def to_json(self) -> dict[str, Any]:
        return {"send_path": self.send_path, "missing": list(self.missing)}


async def check_libraries() -> CompatReport:
    """Look for every name gateway.compat uses; log the verdict."""
    aiortc_missing = await aiortc_compat.probe()
    missing = (
        [f"aiortc: {name}" for name in aiortc_missing]
        + [f"aiortc: {name}" for name in await aiortc_compat.probe_rtcp_tap()]
        + [f"pylibsrtp: {n}" for n in srtp_compat.missing(pylibsrtp.Session())]
        + [f"aiomqtt: {n}" for n in mqtt_compat.missing()]
        + globals_compat.missing()
    )
    forced = os.environ.get(FORCE_ENV, "").strip().lower() == FALLBACK
    report = CompatReport(
        send_path=FALLBACK if forced or aiortc_missing else FAST,
        missing=tuple(missing),
        forced=forced,
    )
    if report.send_path == FAST:
        log.info("send path: fast (camgate's own RTP loop)")
    elif forced:
        log.info("send path: fallback (aiortc's own RTP loop), as %s asks", FORCE_ENV)
    else:
        log.warning(
            "send path: fallback (aiortc's own RTP loop, slower; keyframe requests are not"
            " passed to the camera): this aiortc lacks %s",
            ", ".join(aiortc_missing),
        )
    others = [name for name in missing if not name.startswith("aiortc: ")]
    if others:
        log.warning("library internals missing (slower, still working): %s", ", ".join(others))
    return report

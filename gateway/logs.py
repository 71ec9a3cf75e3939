"""Logging set-up. Credentials never reach a log line, whoever writes it."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable

_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")


def redact_text(text: str) -> str:
    """Remove user:password@ from any URL in `text`."""
    return _URL_CREDENTIALS.sub(r"\1***@", text)


class RedactingFilter(logging.Filter):
    """Last line of defence: scrub URL credentials from every formatted record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class LogThrottle:
    """Warnings from one noisy outside source (e.g. junk MQTT payloads): at most `burst`
    lines per `window_s`, then one line saying how many were left out."""

    def __init__(
        self,
        logger: logging.Logger,
        burst: int = 10,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.burst = burst
        self.window_s = window_s
        self._clock = clock
        self._window_start = -window_s
        self._logged = 0
        self.suppressed = 0

    def warning(self, msg: str, *args: object) -> None:
        now = self._clock()
        if now - self._window_start >= self.window_s:
            if self.suppressed:
                self.logger.warning("(%d similar messages were not logged)", self.suppressed)
            self._window_start, self._logged, self.suppressed = now, 0, 0
        if self._logged < self.burst:
            self._logged += 1
            self.logger.warning(msg, *args)
        else:
            self.suppressed += 1


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers (journald, Loki, ...)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    from gateway.logrepeat import RepeatFilter

    handler.addFilter(RepeatFilter())  # a flood of one warning is one line per window
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The WebRTC stack is chatty at INFO; its warnings still come through.
    for noisy in ("aiortc", "aioice", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))

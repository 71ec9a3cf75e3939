"""Logging set-up. Credentials never reach a log line, whoever writes it."""

from __future__ import annotations

import logging
import re

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


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The WebRTC stack is chatty at INFO; its warnings still come through.
    for noisy in ("aiortc", "aioice", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))

"""Logging set-up. Credentials never reach a log line, whoever writes it.

Three layers: the libraries that log secrets at DEBUG (the ONVIF stack logs whole SOAP
envelopes, WS-Security UsernameToken included) are held at INFO whatever the level;
a filter scrubs every message; and the formatter scrubs the finished line again, so a
traceback or stack trace quoting a URL or a header is covered too.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable

# User info runs to the last `@` of the URL: passwords are pasted unescaped ("p@ss").
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s'\"<>]*@")
# ?password=..., &pass=..., and the `_password=` of XMeye-style paths.
_SECRET_PARAMS = re.compile(
    r"(?i)((?:^|[?&;/_\s])(?:password|passwd|pwd|pass|token|secret)=)[^&;\s#'\"<>_]*"
)
# WS-Security UsernameToken (ONVIF): user, password or its digest, nonce, created time.
_WSSE_ELEMENTS = re.compile(r"(?i)(<(?:[\w.-]+:)?(?:Username|Password|Nonce|Created)\b[^>]*>)[^<]*")
# HTTP / RTSP authentication: the header's value, and digest parameters wherever quoted.
_AUTH_HEADER = re.compile(r"(?im)\b((?:proxy-)?authorization\s*:\s*)(?!['\"])[^\r\n]+")
_AUTH_QUOTED = re.compile(r"(?i)\b((?:proxy-)?authorization['\"]?\s*[:=,]\s*)(['\"])(.*?)\2")
_DIGEST_PARAMS = re.compile(r"(?i)\b(response|nonce|cnonce|password)=\"[^\"]*\"")

# Loggers that write credentials at DEBUG (zeep and the ONVIF library print SOAP
# envelopes; the HTTP clients their headers): never below INFO.
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
SECRET_LOGGING_LIBRARIES = ("zeep", "onvif", "httpx", "httpcore", "aiohttp.client")


def redact_text(text: str) -> str:
    """Remove credentials from `text`: URL user info, password query parameters,
    WS-Security tokens, Authorization headers and digest parameters."""
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    text = _SECRET_PARAMS.sub(r"\1***", text)
    text = _WSSE_ELEMENTS.sub(r"\1***", text)
    text = _AUTH_HEADER.sub(r"\1***", text)
    text = _AUTH_QUOTED.sub(r"\1\2***\2", text)
    return _DIGEST_PARAMS.sub(r'\1="***"', text)


class RedactingFormatter(logging.Formatter):
    """A formatter whose whole output (message, traceback, stack) is redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


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
            "message": redact_text(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = redact_text(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact_text(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        )
    handler.addFilter(RedactingFilter())
    from gateway.logrepeat import RepeatFilter

    handler.addFilter(RepeatFilter())  # a flood of one warning is one line per window
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The WebRTC stack is chatty at INFO; its warnings still come through.
    for noisy in ("aiortc", "aioice", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    for library in SECRET_LOGGING_LIBRARIES:
        logging.getLogger(library).setLevel(max(logging.INFO, root.level))

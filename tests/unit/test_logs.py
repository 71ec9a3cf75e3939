import logging
import sys

import pytest

from gateway.logs import (
    JsonFormatter,
    LogThrottle,
    RedactingFilter,
    RedactingFormatter,
    redact_text,
    setup_logging,
)


def test_redacts_url_credentials() -> None:
    assert redact_text("rtsp://admin:hunter2@10.0.0.2:554/s") == "rtsp://***@10.0.0.2:554/s"
    assert (
        redact_text("see rtsps://u@h/x and http://a:b@c") == "see rtsps://***@h/x and http://***@c"
    )
    assert redact_text("rtsp://host/path") == "rtsp://host/path"


def test_filter_scrubs_formatted_records() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "cannot open %s", ("rtsp://u:p@h/",), None
    )
    RedactingFilter().filter(record)
    assert record.getMessage() == "cannot open rtsp://***@h/"


def test_log_throttle_limits_a_noisy_source(caplog) -> None:
    now = [0.0]
    throttle = LogThrottle(logging.getLogger("t"), burst=3, window_s=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "t"):
        for i in range(10):
            throttle.warning("junk %d", i)
        assert [r.getMessage() for r in caplog.records] == ["junk 0", "junk 1", "junk 2"]
        assert throttle.suppressed == 7
        now[0] = 61
        throttle.warning("junk %d", 10)
    assert [r.getMessage() for r in caplog.records][3:] == [
        "(7 similar messages were not logged)",
        "junk 10",
    ]


@pytest.mark.attack
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rtsp://admin:p@ss@cam:554/s?x=1", "rtsp://***@cam:554/s?x=1"),  # unescaped @
        ("rtsp://admin:p@ss/w#rd@cam/s", "rtsp://***@cam/s"),
        ("GET /cgi?user=admin&password=hunter2&x=1", "GET /cgi?user=admin&password=***&x=1"),
        ("http://cam/snap.jpg?pass=hunter2", "http://cam/snap.jpg?pass=***"),
        ("rtsp://cam/user=admin_password=hunter2_channel=1", "rtsp://cam/user=admin_password=***_channel=1"),
        ("<wsse:Password Type='#PasswordDigest'>q2Fz+/=</wsse:Password>", "<wsse:Password Type='#PasswordDigest'>***</wsse:Password>"),  # noqa: E501
        ("<wsse:Nonce>bm9uY2U=</wsse:Nonce><wsu:Created>2026-01-01T00:00:00Z</wsu:Created>", "<wsse:Nonce>***</wsse:Nonce><wsu:Created>***</wsu:Created>"),  # noqa: E501
        ("<Username>admin</Username>", "<Username>***</Username>"),
        ('Authorization: Digest username="admin", response="0123"', "Authorization: ***"),
        ("{'Authorization': 'Basic YWRtaW46aHVudGVy', 'Host': 'cam'}", "{'Authorization': '***', 'Host': 'cam'}"),  # noqa: E501
        ('WWW-Authenticate: Digest realm="x", nonce="abc"', 'WWW-Authenticate: Digest realm="x", nonce="***"'),  # noqa: E501
        ("the camera requires authorization (401)", "the camera requires authorization (401)"),
        ("mail a@b.example about rtsp://cam/s", "mail a@b.example about rtsp://cam/s"),
    ],
)  # fmt: skip
def test_redacts_every_form_a_secret_takes(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.attack
def test_tracebacks_and_json_lines_are_redacted() -> None:
    def record_with_traceback() -> logging.LogRecord:
        try:
            raise OSError("cannot open rtsp://admin:p@ss@cam/s?password=hunter2")
        except OSError:
            return logging.LogRecord(
                "x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info(), sinfo="stack"
            )

    text = RedactingFormatter("%(message)s").format(record_with_traceback())
    line = JsonFormatter().format(record_with_traceback())
    for output in (text, line):
        assert "Traceback" in output
        assert "p@ss" not in output and "hunter2" not in output
        assert "rtsp://***@cam/s?password=***" in output


def test_libraries_that_log_secrets_stay_at_info_under_debug() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("debug")
        assert root.level == logging.DEBUG
        for name in ("zeep", "zeep.transports", "onvif", "httpx", "httpcore"):
            assert logging.getLogger(name).getEffectiveLevel() == logging.INFO
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])

import logging

from gateway.logs import LogThrottle, RedactingFilter, redact_text


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

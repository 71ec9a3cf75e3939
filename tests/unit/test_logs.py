import logging

from gateway.logs import RedactingFilter, redact_text


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

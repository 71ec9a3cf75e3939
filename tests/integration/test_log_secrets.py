"""No secret in any log line at any level: the ONVIF flow (WS-Security UsernameToken with
a password digest) and an RTSP stream with credentials, run with `log_level: debug`."""

from __future__ import annotations

import importlib.util
import io
import logging
from collections.abc import Iterator

import pytest

from gateway.logs import SECRET_LOGGING_LIBRARIES, setup_logging
from tests.conftest import RtspServerFactory, WhepViewerFactory
from tests.integration.test_onvif_camera import (
    SECRETS,
    DeviceFactory,
    GatewayStarter,
    camgate,  # noqa: F401 - fixture
    device,  # noqa: F401 - fixture
    onvif_block,
    rtsp_camera,
    stream_url,
)

if importlib.util.find_spec("onvif") is None:
    pytest.skip("onvif-zeep-async is not installed", allow_module_level=True)

pytestmark = pytest.mark.attack


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """camgate's own logging at `debug`, written to a buffer; put back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    names = ("aiortc", "aioice", "aiohttp.access", *SECRET_LOGGING_LIBRARIES, "zeep.transports")
    levels = {name: logging.getLogger(name).level for name in names}
    buffer = io.StringIO()
    setup_logging("debug")
    root.handlers[0].setStream(buffer)  # type: ignore[attr-defined]
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize("libraries", ["as-set-up", "forced-to-debug"])
async def test_debug_logs_of_the_onvif_flow_hold_no_secret(
    libraries: str,
    debug_log: io.StringIO,
    rtsp_server: RtspServerFactory,
    device: DeviceFactory,  # noqa: F811
    camgate: GatewayStarter,  # noqa: F811
    whep_viewer: WhepViewerFactory,
) -> None:
    if libraries == "forced-to-debug":
        # Someone lowers the libraries' levels by hand: the formatter still redacts.
        for name in SECRET_LOGGING_LIBRARIES:
            logging.getLogger(name).setLevel(logging.DEBUG)
    server = await rtsp_camera(rtsp_server)
    dev = await device(rtsp_url=stream_url(server))
    gw = await camgate([{"name": "cam", "onvif": onvif_block(dev)}])
    viewer = await whep_viewer(gw.base_url, "cam")
    await viewer.wait_frames(10, timeout=30)
    await dev.wait_for("GetStreamUri")

    text = debug_log.getvalue()
    assert "camgate" in text and "DEBUG" in text  # the log was captured, at debug level
    assert dev.security_tokens  # the camera saw digests, nonces and times...
    if libraries == "forced-to-debug":
        assert "UsernameToken" in text  # ...the envelopes were logged...
    leaks = [
        secret for token in dev.security_tokens for secret in token if secret and secret in text
    ] + [secret for secret in SECRETS if secret in text]
    assert leaks == []  # ...and none of it reached the log

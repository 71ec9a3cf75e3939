"""The pure parts of gateway/onvif: range scaling, stream URL credentials, import hygiene."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.config import OnvifConfig
from gateway.onvif.ptz import Axis, _space
from gateway.onvif.session import OnvifError, OnvifSession


@pytest.mark.parametrize(
    ("low", "high", "fraction", "expected"),
    [
        (-0.5, 0.5, 0.5, 0.25),
        (-0.5, 0.5, -1.0, -0.5),
        (-2.0, 4.0, -0.5, -1.0),  # asymmetric: each side scales to its own end
        (-2.0, 4.0, 0.5, 2.0),
        (-1.0, 1.0, 0.0, 0.0),  # zero is always "stop"
        (0.0, 1.0, -1.0, 0.0),  # a range without a negative side clamps
    ],
)
def test_signed_scaling(low: float, high: float, fraction: float, expected: float) -> None:
    assert Axis(low, high).signed(fraction) == pytest.approx(expected)


def test_linear_scaling_for_positions_and_speeds() -> None:
    degrees = Axis(-180.0, 180.0)
    assert degrees.linear(0.5) == pytest.approx(90.0)
    assert degrees.linear(2.0) == pytest.approx(180.0)  # clamped
    assert Axis(1.0, 100.0).linear(0.0, 0.0, 1.0) == pytest.approx(1.0)


def test_generic_space_is_preferred_over_vendor_spaces() -> None:
    def space(uri: str, low: float, high: float) -> Any:
        return SimpleNamespace(URI=uri, XRange=SimpleNamespace(Min=low, Max=high), YRange=None)

    chosen = _space(
        [
            space("http://vendor/Degrees", -180, 180),
            space("http://www.onvif.org/ver10/tptz/ZoomSpaces/VelocityGenericSpace", -1, 1),
        ]
    )
    assert chosen is not None and chosen.uri.endswith("VelocityGenericSpace")
    assert _space([space("http://vendor/Broken", 1, 1)]) is None  # an empty range is unusable
    assert _space(None) is None


def session(username: str | None = "ad:min", password: str | None = "p@ss/w:rd") -> OnvifSession:
    config = OnvifConfig("cam.local", 80, username, password)
    return OnvifSession(config, "cam")


async def resolve(onvif: OnvifSession, uri: str) -> Any:
    async def call(service: str, operation: str, params: Any = None) -> Any:
        assert (service, operation) == ("media", "GetStreamUri")
        return SimpleNamespace(Uri=uri)

    onvif.call = call  # type: ignore[method-assign]
    return await onvif.stream_uri("Main")


async def test_stream_url_gets_percent_encoded_credentials() -> None:
    stream = await resolve(session(), "rtsp://192.0.2.1:554/Streaming/101?x=1")
    assert stream.url == "rtsp://ad%3Amin:p%40ss%2Fw%3Ard@192.0.2.1:554/Streaming/101?x=1"
    assert stream.public == "rtsp://192.0.2.1:554/Streaming/101?x=1"
    assert "p@ss" not in repr(stream)


async def test_stream_url_keeps_the_cameras_own_credentials_and_fixes_0_0_0_0() -> None:
    stream = await resolve(session(), "rtsp://u:v@192.0.2.1/s")
    assert stream.url == "rtsp://u:v@192.0.2.1/s" and stream.public == "rtsp://192.0.2.1/s"
    stream = await resolve(session(username=None, password=None), "rtsp://0.0.0.0:8554/s")
    assert stream.url == "rtsp://cam.local:8554/s"


async def test_a_stream_url_that_is_not_rtsp_is_an_error() -> None:
    with pytest.raises(OnvifError, match="not an rtsp:// URL"):
        await resolve(session(), "http://192.0.2.1/video.mjpg")


def test_onvif_is_imported_lazily_and_leaves_logging_alone() -> None:
    script = """
import asyncio, logging, sys
import gateway.app
assert "onvif" not in sys.modules, "gateway.app imported onvif"
from gateway.onvif.session import load_onvif
asyncio.run(load_onvif())
root = logging.getLogger()
assert "onvif" in sys.modules
assert root.handlers == [] and root.level == logging.WARNING, (root.handlers, root.level)
"""
    subprocess.run(
        [sys.executable, "-c", script], check=True, timeout=60, cwd=Path(__file__).parents[2]
    )


# --- the sub stream's profile ---------------------------------------------------------------


def _session_with(*profiles: tuple[str, str, int, int]) -> OnvifSession:
    from gateway.onvif.session import MediaProfile

    session = OnvifSession(OnvifConfig(host="192.0.2.9"))
    listed = [MediaProfile(t, t, enc, w, h, None, None, None) for t, enc, w, h in profiles]

    async def known() -> list[MediaProfile]:
        return listed

    session.profiles = known  # type: ignore[method-assign]
    return session


async def test_auto_picks_the_smallest_h264_profile_below_the_main_one() -> None:
    session = _session_with(
        ("Main", "H264", 1920, 1080),
        ("Jpeg", "JPEG", 320, 240),
        ("Mid", "H264", 1280, 720),
        ("Low", "H264", 640, 360),
    )
    found = await session.select_substream("auto")
    assert found is not None and found.token == "Low"
    named = await session.select_substream("Mid")
    assert named is not None and named.token == "Mid"


async def test_auto_finds_none_without_a_smaller_h264_profile() -> None:
    assert await _session_with(("Main", "H264", 1920, 1080)).select_substream("auto") is None
    jpeg_only = _session_with(("Main", "H264", 1920, 1080), ("Jpeg", "JPEG", 320, 240))
    assert await jpeg_only.select_substream("auto") is None
    # The main stream configured as the camera's small profile: nothing is smaller.
    small_main = _session_with(("Low", "H264", 640, 360), ("Main", "H264", 1920, 1080))
    assert await small_main.select_substream("auto") is None

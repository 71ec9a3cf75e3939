"""Talk back against GStreamer's ONVIF RTSP server: the voice that CameraTalk is fed
arrives at the camera's speaker, in the codec its backchannel SDP asks for; the floor is
one speaker's; a refused SETUP is a clear error; redirects are followed; the camera gets
RTCP sender reports."""

from __future__ import annotations

import asyncio
import fractions
import logging
import time

import av
import numpy as np
import pytest

from gateway.talkback import backchannel
from gateway.talkback.camera import Answer, CameraTalk, Reply
from tests.rig.backchannel import (
    BackchannelCamera,
    CameraFactory,
    dominant_frequency,
    loud_samples,
)
from tests.rig.rtsp_redirector import RtspRedirector
from tests.rig.wait import wait_until

pytestmark = pytest.mark.rtsp


def talk_for(camera: BackchannelCamera, **kwargs: object) -> CameraTalk:
    return talk_for_url(camera.url("/cam"), **kwargs)


def talk_for_url(url: str, **kwargs: object) -> CameraTalk:
    async def locate() -> str:
        return url

    return CameraTalk("cam", locate, **kwargs)  # type: ignore[arg-type]


def tone(seconds: float, start: int = 0) -> list[av.AudioFrame]:
    """20 ms frames of a 1 kHz tone as aiortc hands them over (48 kHz stereo s16)."""
    frames = []
    for i in range(start, start + int(seconds * 50)):
        t = np.arange(i * 960, (i + 1) * 960) / 48000
        wave = (np.sin(2 * np.pi * 1000 * t) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(
            np.stack([wave, wave]).T.reshape(1, -1).copy(), format="s16", layout="stereo"
        )
        frame.sample_rate, frame.pts = 48000, i * 960
        frame.time_base = fractions.Fraction(1, 48000)
        frames.append(frame)
    return frames


async def speak(talk: CameraTalk, owner: str, seconds: float) -> None:
    # A microphone's pace (the camera's jitter buffer expects real time): on the clock,
    # not 20 ms after each frame, which drifts behind on a busy machine.
    loop = asyncio.get_running_loop()
    start = loop.time()
    for index, frame in enumerate(tone(seconds)):
        await talk.feed(owner, frame)
        await asyncio.sleep(max(0.0, start + (index + 1) * 0.02 - loop.time()))


@pytest.mark.parametrize("codec", ["pcmu", "pcma", "aac"])
async def test_voice_reaches_the_camera_in_its_codec(cameras: CameraFactory, codec: str) -> None:
    camera = await cameras(codec=codec)
    talk = talk_for(camera, linger_s=0.2)
    ended: list[str] = []
    answer = await talk.start("viewer-a", ended.append)
    assert answer == Answer(Reply.GRANTED, codec.upper())
    assert talk.available and talk.codec == codec.upper()
    # A camera's pipeline may miss the first packets while it starts (on a loaded test
    # machine, a good part of a second): speak for longer than what must be heard.
    await speak(talk, "viewer-a", 3.0)
    try:
        await wait_until(lambda: loud_samples(camera.heard()) >= 1.0 * camera.rate, timeout=20)
    except TimeoutError:
        sent = talk._session.packets_sent if talk._session else None
        heard = camera.heard()
        raise AssertionError(
            f"sent {sent} packets; heard {heard.size} samples, {loud_samples(heard)} loud, "
            f"max {abs(heard.astype(int)).max() if heard.size else 0}"
        ) from None
    assert talk.stop("viewer-a")
    await wait_until(lambda: camera.count("teardown") >= 1, timeout=20)
    heard = camera.heard()
    assert abs(dominant_frequency(heard, camera.rate) - 1000) < 30
    assert loud_samples(heard) <= 3.3 * camera.rate  # no more than the three seconds spoken
    assert not ended
    await talk.close()


async def test_one_speaker_at_a_time_and_stop_releases(cameras: CameraFactory) -> None:
    camera = await cameras()
    talk = talk_for(camera, linger_s=30)
    assert (await talk.start("a", lambda _: None)).reply is Reply.GRANTED
    assert (await talk.start("b", lambda _: None)).reply is Reply.BUSY
    await talk.feed("b", tone(0.1)[0])  # not b's turn: dropped
    assert not talk.stop("b")
    await speak(talk, "a", 2.0)
    await wait_until(lambda: loud_samples(camera.heard()) >= 0.5 * camera.rate, timeout=20)
    first = loud_samples(camera.heard())
    assert talk.stop("a")
    await asyncio.sleep(1.5)  # silence: the next spurt's timestamps must skip it
    assert (await talk.start("b", lambda _: None)).reply is Reply.GRANTED
    assert talk.sessions_opened == 1  # within linger_s: the same backchannel session
    await speak(talk, "b", 2.0)
    await wait_until(lambda: loud_samples(camera.heard()) >= first + 0.5 * camera.rate, timeout=20)
    await talk.close()
    await wait_until(lambda: camera.count("teardown") >= 1, timeout=20)


async def test_max_talk_time_ends_the_turn(cameras: CameraFactory) -> None:
    camera = await cameras()
    talk = talk_for(camera, max_talk_s=0.5, linger_s=0.1)
    ended: asyncio.Queue[str] = asyncio.Queue()
    assert (await talk.start("a", ended.put_nowait)).reply is Reply.GRANTED
    reason = await asyncio.wait_for(ended.get(), 20)
    assert "limited to 0.5 s" in reason
    assert talk.speaker is None
    await wait_until(lambda: camera.count("teardown") >= 1, timeout=20)
    await talk.close()


async def test_camera_without_backchannel_is_unsupported(cameras: CameraFactory) -> None:
    camera = await cameras(codec="none")
    talk = talk_for(camera)
    answer = await talk.start("a", lambda _: None)
    assert answer.reply is Reply.UNSUPPORTED and "no audio backchannel" in (answer.message or "")
    assert not talk.available and talk.speaker is None
    await talk.close()


async def test_refused_setup_is_a_clear_error(cameras: CameraFactory) -> None:
    camera = await cameras(refuse_setup=True)
    talk = talk_for(camera)
    answer = await talk.start("a", lambda _: None)
    assert answer.reply is Reply.ERROR
    assert "refused the backchannel SETUP: 403" in (answer.message or "")
    assert talk.speaker is None  # the floor is free again
    await talk.close()


async def test_off_is_unsupported_without_asking_the_camera() -> None:
    talk = CameraTalk("cam", None)
    answer = await talk.start("a", lambda _: None)
    assert answer.reply is Reply.UNSUPPORTED


async def test_digest_auth_and_no_password_in_the_log(
    cameras: CameraFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    camera = await cameras(user="installer", password="s3cret-Talk")
    talk = talk_for(camera, linger_s=0.1)
    assert (await talk.start("a", lambda _: None)).reply is Reply.GRANTED
    await speak(talk, "a", 2.0)
    await wait_until(lambda: loud_samples(camera.heard()) >= 0.5 * camera.rate, timeout=20)
    talk.stop("a")
    await wait_until(lambda: camera.count("teardown") >= 1, timeout=20)
    await talk.close()
    assert "backchannel to rtsp://127.0.0.1" in caplog.text
    assert "s3cret" not in caplog.text and "installer" not in caplog.text


async def test_talk_back_follows_a_redirect(cameras: CameraFactory) -> None:
    camera = await cameras()
    async with RtspRedirector(camera.url("/cam")) as redirector:
        talk = talk_for_url(redirector.url(), linger_s=0.2)
        assert (await talk.start("a", lambda _: None)).reply is Reply.GRANTED
        await speak(talk, "a", 2.0)
        await wait_until(lambda: loud_samples(camera.heard()) >= 0.5 * camera.rate, timeout=20)
        await talk.close()
    line, headers = redirector.requests[0]
    assert line.startswith("OPTIONS rtsp://127.0.0.1")
    assert headers["require"] == "www.onvif.org/ver20/backchannel"
    assert camera.backchannel_setups() >= 1


async def test_the_camera_gets_rtcp_sender_reports(
    cameras: CameraFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 3550: a sender sends sender reports; they tie the backchannel's RTP clock to
    the wall clock and count what was sent."""
    monkeypatch.setattr(backchannel, "RTCP_INTERVAL_S", 0.5)
    camera = await cameras(codec="pcma")
    talk = talk_for(camera, linger_s=30)
    assert (await talk.start("a", lambda _: None)).reply is Reply.GRANTED
    await speak(talk, "a", 3.0)

    def reports() -> list[dict[str, int]]:
        return [e for e in camera.events if e.get("event") == "sender-report"]

    await wait_until(lambda: len({r["rtp"] for r in reports() if r["packets"] > 0}) >= 2)
    session = talk._session
    assert session is not None and session.packetizer is not None
    sent = [r for r in reports() if r["packets"] > 0]
    assert {r["ssrc"] for r in sent} == {session.packetizer.ssrc}
    assert all(r["packets"] <= session.packets_sent for r in sent)
    assert all(r["octets"] == 160 * r["packets"] for r in sent)  # 20 ms of 8 kHz G.711
    first, last = sent[0], sent[-1]
    wall = [r["ntp"] / (1 << 32) - 2_208_988_800 for r in (first, last)]
    assert abs(wall[1] - time.time()) < 30
    # The RTP clock the reports give runs at the codec's rate against the wall clock.
    elapsed_rtp = ((last["rtp"] - first["rtp"]) % (1 << 32)) / 8000
    assert elapsed_rtp == pytest.approx(wall[1] - wall[0], abs=0.1)
    await talk.close()

"""One RTSP session to a camera's audio backchannel: its own control connection,

    connect -> OPTIONS -> DESCRIBE (3xx -> redirect) -> SETUP (the backchannel, TCP
    interleaved) -> PLAY -> RTP out on the interleaved channel, RTCP sender reports on
    the next one, keepalives -> TEARDOWN

with `Require: www.onvif.org/ver20/backchannel` on every request (cameras forget the
backchannel otherwise). The control connection is the one camgate's RTSP client uses
too (gateway/sources/rtsp_control.py). Errors are TalkError with a message safe to show to the
speaker: credentials go in the Authorization header and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from gateway.media.rtcp import build_receiver_report, build_sender_report
from gateway.rtsp.message import InterleavedFrame, RtspResponse
from gateway.rtsp.sdp import base_url
from gateway.rtsp.url import RtspUrl, parse_url, strip_credentials
from gateway.sources.base import SourceError
from gateway.sources.rtsp_control import (
    MAX_REDIRECTS,
    TEARDOWN_TIMEOUT_S,
    RtspControl,
    is_redirect,
    open_control,
    parse_session_header,
    parse_transport,
    redirect_target,
    status_text,
)
from gateway.talkback.rtp import RtpPacketizer
from gateway.talkback.sdp import (
    REQUIRE_BACKCHANNEL,
    Backchannel,
    BackchannelUnsupported,
    find_backchannel,
)

log = logging.getLogger("camgate.talk")

DEFAULT_TIMEOUT_S = 5.0
RTCP_INTERVAL_S = 5.0  # RFC 3550 6.2's minimum; each wait randomised by 0.5..1.5


class TalkError(Exception):
    """Talking to the camera failed; the message is safe to show to the speaker."""


class BackchannelSession:
    def __init__(self, url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        try:
            self._url: RtspUrl = parse_url(url)
        except ValueError as exc:
            raise TalkError(str(exc)) from None
        self.timeout_s = timeout_s
        self.backchannel: Backchannel | None = None
        self.packetizer: RtpPacketizer | None = None
        self._control: RtspControl | None = None
        self._channel = 0
        self._rtcp_channel: int | None = None
        self._keepalive_method = "OPTIONS"
        self._keepalive: asyncio.Task[None] | None = None
        self._reports: asyncio.Task[None] | None = None
        self.packets_sent = 0
        self.reports_sent = 0

    @property
    def alive(self) -> bool:
        return self._control is not None and self._control.alive

    async def describe(self) -> Backchannel:
        """Connect, DESCRIBE with the Require header (following redirects, as the stream
        client does), and learn the backchannel (BackchannelUnsupported if the camera
        has none camgate can use)."""
        for _ in range(MAX_REDIRECTS + 1):
            self._control = await self._connect()
            response = await self._request("OPTIONS", self._url.public)
            if not is_redirect(response):
                public = (response.headers.get("Public") or "") if response.ok else ""
                self._keepalive_method = "GET_PARAMETER" if "GET_PARAMETER" in public else "OPTIONS"
                response = await self._request(
                    "DESCRIBE", self._url.public, [("Accept", "application/sdp")]
                )
            if is_redirect(response):
                await self._follow(response)
                continue
            if response.status == 551:  # RFC 2326 12.32: it does not know the Require tag
                raise BackchannelUnsupported(
                    f"the camera has no audio backchannel ({status_text(response)})"
                )
            if not response.ok:
                raise TalkError(f"the camera refused DESCRIBE: {status_text(response)}")
            base = base_url(response.headers, self._url.public)
            self.backchannel = find_backchannel(response.body.decode("utf-8", "replace"), base)
            return self.backchannel
        raise TalkError(f"the camera redirected more than {MAX_REDIRECTS} times")

    async def _follow(self, response: RtspResponse) -> None:
        """A 3xx: on to its Location, on a new connection."""
        try:
            target = redirect_target(self._url, response)
        except SourceError as exc:
            raise TalkError(str(exc)) from None
        control, self._control = self._control, None
        if control is not None:
            await control.close()
        log.info("backchannel to %s: redirected to %s", self._url, target)
        self._url = target

    async def open(self) -> Backchannel:
        """DESCRIBE, SETUP and PLAY: afterwards `send` reaches the camera's speaker."""
        backchannel = await self.describe()
        spec = "RTP/AVP/TCP;unicast;interleaved=0-1"
        setup = await self._request(
            "SETUP", strip_credentials(backchannel.control_url), [("Transport", spec)]
        )
        if not setup.ok:
            raise TalkError(f"the camera refused the backchannel SETUP: {status_text(setup)}")
        assert self._control is not None
        session = parse_session_header(setup.headers.get("Session") or "")
        self._control.session = session.id or None
        channels = parse_transport(setup.headers.get("Transport") or "").get("interleaved", "0")
        first, _, second = channels.partition("-")
        self._channel = int(first) if first.isdigit() and int(first) < 256 else 0
        rtcp = int(second) if second.isdigit() else self._channel + 1
        self._rtcp_channel = rtcp if rtcp < 256 else None
        play = await self._request("PLAY", strip_credentials(backchannel.aggregate_url))
        if not play.ok and backchannel.control_url != backchannel.aggregate_url:
            play = await self._request("PLAY", strip_credentials(backchannel.control_url))
        if not play.ok:
            raise TalkError(f"the camera refused PLAY of the backchannel: {status_text(play)}")
        self.packetizer = RtpPacketizer(backchannel.payload_type, backchannel.clock_rate)
        self._keepalive = asyncio.create_task(
            self._keep_alive(session.timeout / 2), name="talk-keepalive"
        )
        self._reports = asyncio.create_task(self._send_reports(), name="talk-rtcp")
        log.info(
            "backchannel to %s open: %s/%d/%d",
            self._url,
            backchannel.codec,
            backchannel.clock_rate,
            backchannel.channels,
        )
        return backchannel

    def send(self, payload: bytes, samples: int, marker: bool = False) -> None:
        """One RTP packet carrying `samples` samples (per channel) to the camera."""
        if self._control is None or self.packetizer is None:
            return
        self._control.send_interleaved(
            self._channel, self.packetizer.packet(payload, samples, marker)
        )
        self.packets_sent += 1

    async def close(self) -> None:
        """TEARDOWN (briefly, best effort) and close; safe to call twice."""
        control, self._control = self._control, None
        for task in (self._keepalive, self._reports):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._keepalive = self._reports = None
        if control is None:
            return
        try:
            if control.session and control.alive and self.backchannel is not None:
                uri = strip_credentials(self.backchannel.aggregate_url)
                with contextlib.suppress(SourceError, OSError):
                    await control.exchange(
                        "TEARDOWN", uri, [REQUIRE_BACKCHANNEL], timeout=TEARDOWN_TIMEOUT_S
                    )
        finally:
            await control.close()
            log.info("backchannel to %s closed (%d packets sent)", self._url, self.packets_sent)

    async def _connect(self) -> RtspControl:
        try:
            return await open_control(self._url, self.timeout_s, self._on_frame)
        except SourceError as exc:
            raise TalkError(str(exc)) from None

    async def _request(
        self, method: str, uri: str, headers: list[tuple[str, str]] | None = None
    ) -> RtspResponse:
        assert self._control is not None
        try:
            return await self._control.request(method, uri, [REQUIRE_BACKCHANNEL, *(headers or [])])
        except SourceError as exc:
            raise TalkError(str(exc)) from None

    def _on_frame(self, frame: InterleavedFrame) -> None:
        pass  # the camera's RTCP receiver reports: nothing to act on

    async def _keep_alive(self, interval: float) -> None:
        assert self.backchannel is not None
        uri = strip_credentials(self.backchannel.aggregate_url)
        while self._control is not None and self._control.alive:
            await asyncio.sleep(interval)
            with contextlib.suppress(TalkError):
                await self._request(self._keepalive_method, uri)

    async def _send_reports(self) -> None:
        """RTCP on the channel after the RTP one (RFC 3550 6): a sender report once we
        have sent audio (it ties our RTP timestamps to the wall clock and counts what we
        sent), an empty receiver report before. The first after half the interval (6.2),
        each wait randomised (6.3.5) so that cameras' reports never fall into step."""
        interval = RTCP_INTERVAL_S / 2
        while self._control is not None and self._control.alive:
            await asyncio.sleep(interval * random.uniform(0.5, 1.5))
            interval = RTCP_INTERVAL_S
            report = self._report()
            if report is not None and self._control is not None and self._rtcp_channel is not None:
                self._control.send_interleaved(self._rtcp_channel, report)
                self.reports_sent += 1

    def _report(self) -> bytes | None:
        packetizer = self.packetizer
        if packetizer is None:
            return None
        timestamp = packetizer.timestamp_at(time.monotonic())
        if timestamp is None:  # nothing sent yet
            return build_receiver_report(packetizer.ssrc, None, 0, 0, 0)
        return build_sender_report(
            packetizer.ssrc, time.time(), timestamp, packetizer.packets, packetizer.octets
        )

#!/usr/bin/python3
"""An ONVIF camera with a speaker for the tests: GStreamer's RTSPOnvifServer, whose
media carry an audio backchannel (ONVIF Streaming Spec 5.3) for clients that DESCRIBE
with `Require: www.onvif.org/ver20/backchannel`.

What the camera hears is appended to --out, so a test can look at the sound that
arrived: G.711 decoded to raw signed 16-bit little-endian mono samples at 8000 Hz, AAC as
the ADTS frames it got (the test decodes them).

Runs under Debian's /usr/bin/python3 like tests/rig/rtsp_server.py, whose options and
stdout protocol it shares, plus:
    {"event": "teardown"}                         a client sent TEARDOWN
    {"event": "setup", "uri": "..."}              a client sent SETUP
    {"event": "sender-report", "ssrc": N, "ntp": N, "rtp": N, "packets": N, "octets": N}
                                                  the backchannel's RTP session got an
                                                  RTCP sender report from the client

    backchannel_server.py --backchannel pcmu|pcma|aac|none --out FILE \
        [--refuse-backchannel-setup] --mount '/cam=( videotestsrc ... name=pay0 )' ...
"""

from __future__ import annotations

import argparse
import sys

import gi
from rtsp_server import CameraServer, emit, parse_args

gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtsp, GstRtspServer  # noqa: E402

_PCM = "audio/x-raw, format=S16LE, channels=1"
BACKCHANNELS = {
    "pcmu": (
        'capsfilter caps="application/x-rtp, media=audio, payload=0, clock-rate=8000, '
        'encoding-name=PCMU" name=depay_backchannel ! rtppcmudepay ! mulawdec'
    ),
    "pcma": (
        'capsfilter caps="application/x-rtp, media=audio, payload=8, clock-rate=8000, '
        'encoding-name=PCMA" name=depay_backchannel ! rtppcmadepay ! alawdec'
    ),
    # AAC-LC, 16 kHz mono (AudioSpecificConfig 0x1408), RFC 3640 AAC-hbr
    "aac": (
        'capsfilter caps="application/x-rtp, media=audio, payload=96, clock-rate=16000, '
        "encoding-name=MPEG4-GENERIC, mode=(string)AAC-hbr, config=(string)1408, "
        "sizelength=(string)13, indexlength=(string)3, indexdeltalength=(string)3, "
        'streamtype=(string)5" name=depay_backchannel ! rtpmp4gdepay ! aacparse'
    ),
}
# Debian's faad mis-decodes mono AAC: the AAC camera keeps the ADTS frames it got instead.
_KEEP_AS_ADTS = "audio/mpeg, mpegversion=4, stream-format=adts"


def backchannel_launch(codec: str, out: str) -> str:
    # append: every DESCRIBE makes a media (a probe's too) whose filesink opens the file;
    # truncating it then, while another media writes, would lose what was heard.
    sink = f"filesink location={out} append=true buffer-mode=unbuffered async=false sync=false"
    if codec == "aac":
        return f"( {BACKCHANNELS[codec]} ! {_KEEP_AS_ADTS} ! {sink} )"
    return f"( {BACKCHANNELS[codec]} ! audioconvert ! audioresample ! {_PCM} ! {sink} )"


class OnvifCameraServer(CameraServer):
    def new_server(self) -> GstRtspServer.RTSPServer:
        return GstRtspServer.RTSPOnvifServer()

    def new_factory(self) -> GstRtspServer.RTSPMediaFactory:
        factory = GstRtspServer.RTSPOnvifMediaFactory()
        factory.set_media_gtype(GstRtspServer.RTSPOnvifMedia.__gtype__)
        # The jitter buffer before the speaker: a test machine whose 2 cores are shared by
        # many processes delays packets far more than a LAN; 200 ms would drop them as late.
        factory.set_latency(2000)
        if self.args.backchannel != "none":
            factory.set_backchannel_launch(backchannel_launch(self.args.backchannel, self.args.out))
        factory.connect("media-configure", self.on_onvif_media)
        return factory

    def on_onvif_media(
        self, _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia
    ) -> None:
        media.connect("prepared", self.watch_reports)

    @staticmethod
    def watch_reports(media: GstRtspServer.RTSPMedia) -> None:
        """Every RTP session of the media tells of the RTCP it receives."""
        for index in range(media.n_streams()):
            session = media.get_stream(index).get_rtpsession()
            if session is not None:
                session.connect("on-ssrc-active", on_ssrc_active)

    def on_client_connected(
        self, server: GstRtspServer.RTSPServer, client: GstRtspServer.RTSPClient
    ) -> None:
        super().on_client_connected(server, client)
        client.connect("pre-setup-request", self.on_pre_setup)
        client.connect("teardown-request", lambda *_: emit("teardown"))

    def on_pre_setup(
        self, _client: GstRtspServer.RTSPClient, context: GstRtspServer.RTSPContext
    ) -> GstRtsp.RTSPStatusCode:
        uri = context.uri.abspath if context.uri is not None else ""
        emit("setup", uri=uri)
        # The backchannel is the last stream of the media (video is pay0).
        if self.args.refuse_backchannel_setup and not uri.endswith("stream=0"):
            return GstRtsp.RTSPStatusCode.FORBIDDEN
        return GstRtsp.RTSPStatusCode.OK


def on_ssrc_active(_session: object, source: object) -> None:
    """An SSRC sent RTCP; if it was a sender report, say what it said."""
    stats = source.get_property("stats")  # type: ignore[attr-defined]
    if not stats.get_value("have-sr"):
        return
    emit(
        "sender-report",
        ssrc=source.get_property("ssrc"),  # type: ignore[attr-defined]
        ntp=stats.get_value("sr-ntptime"),
        rtp=stats.get_value("sr-rtptime"),
        packets=stats.get_value("sr-packet-count"),
        octets=stats.get_value("sr-octet-count"),
    )


def main(argv: list[str]) -> int:
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--backchannel", choices=(*BACKCHANNELS, "none"), default="pcmu")
    own.add_argument("--out", default="/dev/null")
    own.add_argument("--refuse-backchannel-setup", action="store_true")
    extra, rest = own.parse_known_args(argv)
    args = parse_args(rest)
    for name, value in vars(extra).items():
        setattr(args, name, value)
    args.shared = False  # gst-rtsp-server: "Backchannel media factories can't be shared"
    Gst.init(None)
    OnvifCameraServer(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

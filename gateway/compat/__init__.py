"""Every private name camgate uses of a third-party library, in one place.

aiortc, aioice, pylibsrtp and aiomqtt are used through their public API everywhere else.
Where camgate reaches inside one (a faster send loop, SRTP in place, a socket option),
the name is read or written here only, each module lists what it relies on, and
`gateway.compat.check.check_libraries()` looks for all of it once at start-up: what is
missing is logged and shown in /api/health, and camgate takes the path that needs none
of it (docs/webrtc.md, "Send paths").

- `srtp`: pylibsrtp's libsrtp session (SRTP in place); no aiortc, so the send path and
  the send workers may use it;
- `aiortc`: aiortc's RTCRtpSender, RTCDtlsTransport and H264Encoder, aioice's Connection;
- `mqtt`: aiomqtt's paho client;
- `check`: the start-up check and its report.

This package's own `__init__` imports nothing, so importing `compat.srtp` never brings
in aiortc.
"""

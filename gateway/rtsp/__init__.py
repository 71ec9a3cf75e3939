"""RTSP client protocol, pure (no I/O): messages, authentication, SDP, URLs.

The asyncio client that drives it is `gateway.sources.rtsp`.
"""

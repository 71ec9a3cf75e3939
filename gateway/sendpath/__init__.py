"""The aiortc-free send path: one viewer's RTP from payloads packetized once (`rtppump`),
SRTP in place (`srtp_inplace`), batched UDP (`udpbatch`) and the SRTP key a send worker
protects with (`srtp_keys`). Used by the gateway's send loop (gateway/webrtc/fastsend.py)
and by the send worker processes (gateway/fanout/); it imports neither, nor aiortc.
"""

"""The camera's per-frame send stamp, carried in an SEI user_data_unregistered message.

Payload: 8-byte big-endian CLOCK_REALTIME send time (ns), then an 8-byte frame index
that never wraps across clip loops (receivers use it to count lost frames).
Pure stdlib + gateway.media.h264, so both the camera (system python) and the receivers
(venv) can import it.
"""

from __future__ import annotations

import struct

from gateway.media.h264 import make_sei_user_data_unregistered, parse_sei_user_data_unregistered

STAMP_UUID = bytes.fromhex("6361_6d67_6174_6562_656e_6368_7374_616d".replace("_", ""))
_PAYLOAD = struct.Struct("!QQ")


def make_stamp_nal(send_ns: int, index: int) -> bytes:
    """An SEI NAL unit (no start code) stamping one frame."""
    return make_sei_user_data_unregistered(STAMP_UUID, _PAYLOAD.pack(send_ns, index))


def read_stamp(nal: bytes) -> tuple[int, int] | None:
    """(send_ns, index) if `nal` is our stamp SEI, else None."""
    for uuid, payload in parse_sei_user_data_unregistered(nal):
        if uuid == STAMP_UUID and len(payload) >= _PAYLOAD.size:
            send_ns, index = _PAYLOAD.unpack_from(payload)
            return send_ns, index
    return None

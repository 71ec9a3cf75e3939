"""Who this gateway is on a broker: a node id unique per machine, stable across restarts.

Two gateways on one broker must differ in client id (a broker disconnects the older of two
clients with one id), availability topic and Home Assistant ids. Pis flashed from one image
share a host name but not /etc/machine-id (systemd makes it on first boot), so the machine
id comes first. It is hashed with a key of camgate's own (as sd_id128_get_machine_app_specific
does): the machine id itself is meant to stay private to the host.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import socket
from pathlib import Path

MACHINE_ID_FILE = Path("/etc/machine-id")
APP_KEY = b"camgate mqtt node id"
NODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # Home Assistant's node_id characters
NODE_ID_PREFIX = "camgate-"


def default_node_id(machine_id_file: Path | None = None, hostname: str | None = None) -> str:
    """`camgate-<8 hex digits from the machine id>`, or `camgate-<host name>` without one."""
    machine_id = _read_machine_id(machine_id_file or MACHINE_ID_FILE)
    if machine_id:
        digest = hmac.new(machine_id.encode(), APP_KEY, hashlib.sha256).hexdigest()
        return NODE_ID_PREFIX + digest[:8]
    name = hostname if hostname is not None else socket.gethostname()
    return (NODE_ID_PREFIX + _node_id_text(name.split(".")[0] or "host"))[:64]


def _node_id_text(text: str) -> str:
    """`text` with every character Home Assistant refuses in a node id made `_`."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in text)


def _read_machine_id(path: Path) -> str:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""
    # An image not yet booted holds an empty file or "uninitialized".
    return text if re.fullmatch(r"[0-9a-fA-F]{32}", text) else ""

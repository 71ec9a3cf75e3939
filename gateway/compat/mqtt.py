"""aiomqtt internals: its paho client, for the socket behind it.

camgate sets TCP_QUICKACK on the broker connection after every message it reads
(gateway/mqtt/connection.py); aiomqtt has no public way to the socket, its paho client
(`Client._client`) has (`socket()`). Without it the ACK is simply delayed as usual.
"""

from __future__ import annotations

import socket
from typing import Any

import aiomqtt

REQUIRED = ("aiomqtt.Client._client",)


def missing() -> list[str]:
    """What of REQUIRED this aiomqtt lacks (a client is made, never connected)."""
    client = aiomqtt.Client("localhost")
    return [] if hasattr(client, "_client") else ["aiomqtt.Client._client"]


def client_socket(client: aiomqtt.Client) -> socket.socket | None:
    """The socket to the broker, or None (not connected, or aiomqtt changed)."""
    paho: Any = getattr(client, "_client", None)
    sock = paho.socket() if paho is not None else None
    return sock if isinstance(sock, socket.socket) else None

"""The aiomqtt client for the configured broker: protocol, credentials, TLS, Last Will."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl

import aiomqtt

from gateway.compat import mqtt as mqtt_compat
from gateway.config import MqttConfig, MqttTls

log = logging.getLogger("camgate.mqtt")

OFFLINE = "offline"
ONLINE = "online"
CONNECT_TIMEOUT_S = 10.0
TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", 12)  # Linux


def make_client(config: MqttConfig, will_topic: str) -> aiomqtt.Client:
    """A client whose Last Will marks camgate offline (retained) if it vanishes."""
    v5 = config.protocol == "5"
    return aiomqtt.Client(
        config.host,
        config.port,
        username=config.username,
        password=config.password,
        identifier=config.client_id,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        will=aiomqtt.Will(will_topic, OFFLINE, qos=1, retain=True),
        # A fresh session each time: subscriptions are made again on every connect.
        clean_session=None if v5 else True,
        keepalive=config.keepalive_s,
        timeout=CONNECT_TIMEOUT_S,
        tls_context=tls_context(config.tls) if config.tls is not None else None,
        logger=log,
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )


def ack_promptly(client: aiomqtt.Client) -> None:
    """ACK what the broker sent now rather than up to 40 ms later (Linux delayed ACK).

    Mosquitto leaves Nagle's algorithm on by default: while a small packet of its own to
    camgate is unacknowledged (a PUBACK), it holds back the next one, e.g. a PTZ command,
    until camgate's delayed ACK. TCP_QUICKACK after each read sends that ACK at once; it
    does not stick, hence after every message."""
    sock = mqtt_compat.client_socket(client)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)


def tls_context(tls: MqttTls) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=tls.ca)
    if tls.cert:
        context.load_cert_chain(tls.cert, tls.key)
    if tls.insecure:
        # A self-signed broker without its CA file: encrypted but not authenticated.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


# CONNACK codes for "who are you?": 3.1.1 (4, 5) and 5 (134, 135).
AUTH_REFUSED = {4, 5, 134, 135}


def describe_failure(exc: aiomqtt.MqttError) -> str:
    """Why a connection failed, pointing at the config key to fix where there is one."""
    rc = getattr(exc, "rc", None)
    code = getattr(rc, "value", rc)
    if code in AUTH_REFUSED:
        return f"the broker refused the user name or password (mqtt.username/password): {exc}"
    text = str(exc)
    if "CERTIFICATE" in text.upper() or "SSL" in text.upper():
        return f"TLS failed (mqtt.tls): {text}"
    return text

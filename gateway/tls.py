"""HTTPS for the viewer and API: the configured certificate, or one camgate makes once
(self-signed, kept in the state directory, valid 10 years) for names and addresses the
box is reached by."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import socket
import ssl
from pathlib import Path

import ifaddr
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.config import TlsConfig

log = logging.getLogger("camgate.tls")

SELF_SIGNED_DIR = "tls"
VALID_DAYS = 3650


class TlsError(Exception):
    """The certificate can't be loaded or made; the message says which file."""


def server_context(tls: TlsConfig, state_dir: Path) -> ssl.SSLContext:
    if tls.self_signed:
        cert, key = self_signed_certificate(state_dir / SELF_SIGNED_DIR)
    else:
        assert tls.cert is not None and tls.key is not None
        cert, key = Path(tls.cert), Path(tls.key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load the TLS certificate {cert} / key {key}: {exc}") from None
    return context


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(cert, key) paths; made on the first call, reused after."""
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path
    names = sorted({"localhost", socket.gethostname(), f"{socket.gethostname()}.local"})
    addresses = sorted(local_addresses(), key=str)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"camgate {names[0]}")])
    now = dt.datetime.now(dt.UTC)
    alternative = [x509.DNSName(n) for n in names] + [x509.IPAddress(a) for a in addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise TlsError(f"cannot write the certificate in {directory}: {exc}") from None
    fingerprint = cert.fingerprint(hashes.SHA256()).hex(":")
    log.info("made a self-signed certificate %s (SHA-256 %s)", cert_path, fingerprint)
    return cert_path, key_path


def local_addresses() -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = {ipaddress.ip_address("127.0.0.1")}
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            address = ipaddress.ip_address(text.split("%")[0])
            if not address.is_link_local:
                found.add(address)
    return found

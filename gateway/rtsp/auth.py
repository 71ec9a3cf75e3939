"""RTSP authentication: Basic and Digest (RFC 2617 / RFC 7616).

Cameras answer 401 with one or more WWW-Authenticate challenges, sometimes several in
one header line. Digest is preferred whenever offered: Basic sends the password in the
clear. MD5 is what cameras use; SHA-256 and the -sess variants cost nothing extra.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

_HASHES = {"MD5": "md5", "SHA-256": "sha256"}


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "basic", "digest", ...
    params: dict[str, str]

    def param(self, name: str) -> str | None:
        return self.params.get(name.lower())


def parse_challenges(values: list[str]) -> list[Challenge]:
    """Every challenge in the WWW-Authenticate header values, in order. Lenient:
    unknown schemes are returned too and malformed tails are dropped, not raised."""
    challenges: list[Challenge] = []
    for value in values:
        challenges.extend(_parse_header_value(value))
    return challenges


def _parse_header_value(text: str) -> list[Challenge]:
    out: list[Challenge] = []
    pos, n = 0, len(text)
    current: Challenge | None = None
    while pos < n:
        while pos < n and text[pos] in " \t,":
            pos += 1
        start = pos
        while pos < n and text[pos] not in " \t,=":
            pos += 1
        token = text[start:pos]
        if not token:
            break
        rest = pos
        while rest < n and text[rest] in " \t":
            rest += 1
        if rest < n and text[rest] == "=" and current is not None:
            value, pos = _read_value(text, rest + 1)
            current.params[token.lower()] = value
        else:  # a bare token starts a new challenge ("Digest", "Basic", ...)
            current = Challenge(token.lower(), {})
            out.append(current)
            pos = rest
            # token68 form ("Negotiate abc==") is never used by cameras: skip it
    return out


def _read_value(text: str, pos: int) -> tuple[str, int]:
    n = len(text)
    while pos < n and text[pos] in " \t":
        pos += 1
    if pos < n and text[pos] == '"':
        chars: list[str] = []
        pos += 1
        while pos < n and text[pos] != '"':
            if text[pos] == "\\" and pos + 1 < n:
                pos += 1
            chars.append(text[pos])
            pos += 1
        return "".join(chars), pos + 1
    start = pos
    while pos < n and text[pos] != ",":
        pos += 1
    return text[start:pos].strip(), pos


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _hash(algorithm: str, text: str) -> str:
    return hashlib.new(_HASHES[algorithm], text.encode("utf-8")).hexdigest()


def digest_response(
    *,
    username: str,
    password: str,
    realm: str,
    nonce: str,
    method: str,
    uri: str,
    algorithm: str = "MD5",
    qop: str | None = None,
    nc: str = "00000001",
    cnonce: str = "",
) -> str:
    """The Digest `response` value. `algorithm` as the server names it (MD5,
    MD5-sess, SHA-256, SHA-256-sess); `qop` None for RFC 2069-style servers."""
    base, sess = _split_algorithm(algorithm)
    ha1 = _hash(base, f"{username}:{realm}:{password}")
    if sess:
        ha1 = _hash(base, f"{ha1}:{nonce}:{cnonce}")
    a2 = f"{method}:{uri}"
    if qop == "auth-int":  # our requests have no body: H(entity-body) of b""
        a2 += ":" + _hash(base, "")
    ha2 = _hash(base, a2)
    if qop is None:
        return _hash(base, f"{ha1}:{nonce}:{ha2}")
    return _hash(base, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def _split_algorithm(algorithm: str) -> tuple[str, bool]:
    name = algorithm.upper()
    sess = name.endswith("-SESS")
    base = name[:-5] if sess else name
    if base not in _HASHES:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return base, sess


def _pick_qop(offered: str | None) -> str | None:
    """None when the server offered no qop (RFC 2069 compatibility)."""
    if offered is None:
        return None
    options = [o.strip().lower() for o in offered.split(",")]
    for choice in ("auth", "auth-int"):
        if choice in options:
            return choice
    return None


def _supported(challenge: Challenge) -> bool:
    if challenge.scheme == "basic":
        return True
    if challenge.scheme != "digest" or not challenge.param("nonce"):
        return False
    try:
        _split_algorithm(challenge.param("algorithm") or "MD5")
    except ValueError:
        return False
    return challenge.param("qop") is None or _pick_qop(challenge.param("qop")) is not None


def choose_challenge(challenges: list[Challenge]) -> Challenge | None:
    """The first supported Digest challenge (servers list their favourite first),
    else Basic, else None."""
    usable = [c for c in challenges if _supported(c)]
    for challenge in usable:
        if challenge.scheme == "digest":
            return challenge
    return usable[0] if usable else None


class Authenticator:
    """Answers a server's challenge for every following request of the session."""

    def __init__(self, username: str, password: str) -> None:
        self._username = username
        self._password = password
        self._challenge: Challenge | None = None
        self._nc = 0

    def __repr__(self) -> str:  # never show the password
        return f"Authenticator(username={self._username!r})"

    @property
    def scheme(self) -> str | None:
        return self._challenge.scheme if self._challenge else None

    def update(self, www_authenticate: list[str]) -> bool:
        """Take the challenges of a 401; False if none is one we can answer."""
        challenge = choose_challenge(parse_challenges(www_authenticate))
        if challenge is None:
            return False
        if self._challenge is None or challenge.param("nonce") != self._challenge.param("nonce"):
            self._nc = 0
        self._challenge = challenge
        return True

    def authorization(self, method: str, uri: str) -> str | None:
        """The Authorization header value for this request, or None before any 401."""
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            token = f"{self._username}:{self._password}".encode()
            return "Basic " + base64.b64encode(token).decode("ascii")
        return self._digest(challenge, method, uri)

    def _digest(self, challenge: Challenge, method: str, uri: str) -> str:
        realm = challenge.param("realm") or ""
        nonce = challenge.param("nonce") or ""
        algorithm = challenge.param("algorithm")
        qop = _pick_qop(challenge.param("qop"))
        self._nc += 1
        nc = f"{self._nc:08x}"
        cnonce = os.urandom(8).hex()
        response = digest_response(
            username=self._username, password=self._password, realm=realm, nonce=nonce,
            method=method, uri=uri, algorithm=algorithm or "MD5", qop=qop, nc=nc, cnonce=cnonce,
        )  # fmt: skip
        parts = [
            f"username={_quote(self._username)}",
            f"realm={_quote(realm)}",
            f"nonce={_quote(nonce)}",
            f"uri={_quote(uri)}",
            f"response={_quote(response)}",
        ]
        if algorithm:  # echo only what the server named: old firmwares choke on extras
            parts.append(f"algorithm={algorithm}")
        if challenge.param("opaque") is not None:
            parts.append(f"opaque={_quote(challenge.param('opaque') or '')}")
        if qop is not None:
            parts += [f"qop={qop}", f"nc={nc}", f"cnonce={_quote(cnonce)}"]
        return "Digest " + ", ".join(parts)

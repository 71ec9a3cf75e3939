"""Trickle ICE SDP fragments (RFC 8840 `application/trickle-ice-sdpfrag`, as WHEP uses them).

Pure parsing: no aiortc, no I/O. Strict enough to reject junk with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_FRAGMENT_BYTES = 16_384
MAX_CANDIDATES = 64


class FragmentError(ValueError):
    """The fragment is not a valid trickle-ice-sdpfrag body."""


@dataclass
class TrickleFragment:
    ice_ufrag: str | None = None
    ice_pwd: str | None = None
    # (mid or None, candidate attribute value without the "candidate:" prefix)
    candidates: list[tuple[str | None, str]] = field(default_factory=list)
    end_of_candidates: bool = False


def parse_sdpfrag(body: str) -> TrickleFragment:
    if len(body.encode("utf-8", "replace")) > MAX_FRAGMENT_BYTES:
        raise FragmentError("fragment too large")
    frag = TrickleFragment()
    mid: str | None = None
    for number, raw in enumerate(body.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            raise FragmentError(f"line {number}: not an SDP line")
        kind, value = line[0], line[2:]
        if kind == "m":
            mid = None
        elif kind == "a":
            name, _, attr = value.partition(":")
            if name == "ice-ufrag":
                frag.ice_ufrag = _token(attr, number)
            elif name == "ice-pwd":
                frag.ice_pwd = _token(attr, number)
            elif name == "mid":
                mid = _token(attr, number)
            elif name == "candidate":
                _check_candidate(attr, number)
                if len(frag.candidates) >= MAX_CANDIDATES:
                    raise FragmentError("too many candidates")
                frag.candidates.append((mid, attr))
            elif name == "end-of-candidates":
                frag.end_of_candidates = True
        # Other lines (o=, s=, a=group, a=ice-options...) are allowed and ignored.
    return frag


def _token(value: str, number: int) -> str:
    value = value.strip()
    if not value or any(ch.isspace() for ch in value):
        raise FragmentError(f"line {number}: empty or malformed value")
    return value


def _check_candidate(value: str, number: int) -> None:
    """foundation component transport priority address port typ type ..."""
    bits = value.split()
    if len(bits) < 8 or bits[6] != "typ":
        raise FragmentError(f"line {number}: malformed candidate")
    if not bits[1].isdigit() or not bits[3].isdigit() or not bits[5].isdigit():
        raise FragmentError(f"line {number}: malformed candidate")
    if not 0 < int(bits[5]) < 65536:
        raise FragmentError(f"line {number}: candidate port out of range")

"""A seeded mutator of SDP offers: what a broken or hostile WHEP player might send.

Each mutant is a real offer with one to three changes: lines deleted, duplicated,
swapped or garbled; fingerprints, ICE credentials, m-lines, rtpmap/fmtp lines and
numbers made wrong or huge. Deterministic for a seed, so a failure can be replayed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator

Lines = list[str]
HUGE = ["0", "-1", "65536", "4294967296", "99999999999999999999", "1e9", "NaN", "", " "]
JUNK = ["\x00", "\t", "::", "=", "a=", "\u202e", "\ufffd", "%s%n", "' OR 1=1", "x" * 3000]


def _pick(rng: random.Random, lines: Lines, prefix: str) -> int | None:
    found = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    return rng.choice(found) if found else None


def delete_line(rng: random.Random, lines: Lines) -> None:
    del lines[rng.randrange(len(lines))]


def duplicate_line(rng: random.Random, lines: Lines) -> None:
    i = rng.randrange(len(lines))
    lines.insert(rng.randrange(len(lines) + 1), lines[i])


def swap_lines(rng: random.Random, lines: Lines) -> None:
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]


def garble_line(rng: random.Random, lines: Lines) -> None:
    i = rng.randrange(len(lines))
    chars = list(lines[i])
    for _ in range(rng.randint(1, 4)):
        if chars:
            chars[rng.randrange(len(chars))] = rng.choice("0:/ =-xZ\x7f\u00e9")
    lines[i] = "".join(chars)


def truncate_line(rng: random.Random, lines: Lines) -> None:
    i = rng.randrange(len(lines))
    lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]


def junk_in_line(rng: random.Random, lines: Lines) -> None:
    i = rng.randrange(len(lines))
    at = rng.randrange(len(lines[i]) + 1)
    lines[i] = lines[i][:at] + rng.choice(JUNK) + lines[i][at:]


def bad_fingerprint(rng: random.Random, lines: Lines) -> None:
    i = _pick(rng, lines, "a=fingerprint:")
    value = rng.choice(
        [
            "a=fingerprint:sha-256 00:11",
            "a=fingerprint:md5 E1:89:C9:EB:0F:EE:F0:70:58:C9:8D:3A:16:BF:3F:C1",
            "a=fingerprint:sha-256",
            "a=fingerprint:",
            "a=fingerprint:sha-999 ZZ:ZZ",
            "a=fingerprint:sha-256 " + ":".join(["GG"] * 32),
        ]
    )
    if i is None:
        lines.append(value)
    else:
        lines[i] = value


def drop_attribute(rng: random.Random, lines: Lines) -> None:
    name = rng.choice(["a=ice-ufrag", "a=ice-pwd", "a=fingerprint", "a=setup", "a=mid", "a=group"])
    lines[:] = [line for line in lines if not line.startswith(name)]


def odd_m_line(rng: random.Random, lines: Lines) -> None:
    m = rng.choice(
        [
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            "m=video 0 UDP/TLS/RTP/SAVPF 102",
            "m=video 9 RTP/AVP 102",
            "m=video 9 UDP/TLS/RTP/SAVPF",
            "m=video 9 UDP/TLS/RTP/SAVPF 102 102 102",
            "m=video 99999999 UDP/TLS/RTP/SAVPF 300",
            "m=text 9 UDP/TLS/RTP/SAVPF 96",
            "m=video",
            "m=",
        ]
    )
    i = _pick(rng, lines, "m=")
    if i is not None and rng.random() < 0.5:
        lines[i] = m
    else:
        lines.insert(rng.randrange(len(lines) + 1), m)


def bad_rtpmap_or_fmtp(rng: random.Random, lines: Lines) -> None:
    i = _pick(rng, lines, rng.choice(["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"]))
    if i is None:
        return
    line = lines[i]
    replacements: list[Callable[[str], str]] = [
        lambda s: re.sub(r":\d+", ":" + rng.choice(HUGE), s, count=1),
        lambda s: re.sub(r"/\d+", "/" + rng.choice(HUGE), s, count=1),
        lambda s: s.replace("H264", rng.choice(["", "H265", "h264 ", "H264/"])),
        lambda s: s.replace("profile-level-id=", "profile-level-id=" + rng.choice(HUGE)),
        lambda s: s.replace("packetization-mode=1", "packetization-mode=" + rng.choice(HUGE)),
        lambda s: s.replace("apt=", "apt=" + rng.choice(HUGE)),
        lambda s: s.split(" ")[0],
        lambda s: s + ";" + "=;" * rng.randint(1, 50),
    ]
    lines[i] = rng.choice(replacements)(line)


def huge_value(rng: random.Random, lines: Lines) -> None:
    i = rng.randrange(len(lines))
    lines[i] = re.sub(r"\d+", lambda _m: rng.choice(HUGE), lines[i], count=rng.randint(1, 3))


MUTATIONS = [
    delete_line,
    duplicate_line,
    swap_lines,
    garble_line,
    truncate_line,
    junk_in_line,
    bad_fingerprint,
    drop_attribute,
    odd_m_line,
    bad_rtpmap_or_fmtp,
    huge_value,
]


def mutants(offer: str, count: int, seed: int = 14) -> Iterator[str]:
    """`count` mutated copies of `offer` (CRLF line ends, like browsers send)."""
    rng = random.Random(seed)
    original = offer.splitlines()
    for _ in range(count):
        lines = list(original)
        for _ in range(rng.randint(1, 3)):
            if lines:
                rng.choice(MUTATIONS)(rng, lines)
        yield "\r\n".join(lines) + "\r\n"

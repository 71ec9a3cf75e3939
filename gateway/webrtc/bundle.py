"""One set of transport credentials for an offer's BUNDLE group (RFC 8843 7.3.1).

Bundled m-lines share the transport of the BUNDLE-tagged one (the group's first mid),
so its ICE credentials and DTLS fingerprint apply to all of them. Offerers may still
give each m-line its own (aiortc 1.12 does, for an audio and a video m-line), and
aiortc's answerer starts the shared ICE transport with the credentials of whichever of
its own transceivers comes first (camgate adds the video one first) rather than the
tagged m-line's: ICE then never connects. `bundle_credentials()` copies the tagged
m-line's credentials into every bundled m-line before the offer reaches aiortc.

Pure text rewriting: no aiortc, no I/O.
"""

from __future__ import annotations

# Transport attributes the tagged m-line's values replace in the other bundled ones.
_SHARED = ("ice-ufrag", "ice-pwd", "fingerprint")


def _attribute(line: str) -> str | None:
    if not line.startswith("a="):
        return None
    return line[2:].partition(":")[0]


def _mid(section: list[str]) -> str | None:
    for line in section:
        if line.startswith("a=mid:"):
            return line[len("a=mid:") :].strip()
    return None


def _bundle_mids(session: list[str]) -> list[str]:
    for line in session:
        if line.startswith("a=group:BUNDLE"):
            return line[len("a=group:BUNDLE") :].split()
    return []


def _own_lines(section: list[str]) -> list[str]:
    return [line for line in section if _attribute(line) in _SHARED]


def _shared_lines(section: list[str], session: list[str]) -> list[str]:
    """The section's own lines of each _SHARED attribute, else the session's."""
    lines: list[str] = []
    for name in _SHARED:
        own = [line for line in section if _attribute(line) == name]
        lines += own or [line for line in session if _attribute(line) == name]
    return lines


def bundle_credentials(sdp: str) -> str:
    """`sdp` with every bundled m-line carrying the BUNDLE-tagged m-line's ICE
    credentials and fingerprints; unchanged if it has no BUNDLE group or nothing
    differs."""
    newline = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("m=")]
    if not starts:
        return sdp
    session = lines[: starts[0]]
    sections = [lines[a:b] for a, b in zip(starts, [*starts[1:], len(lines)], strict=True)]
    mids = _bundle_mids(session)
    tagged = next((s for s in sections if mids and _mid(s) == mids[0]), None)
    if tagged is None:
        return sdp
    shared = _shared_lines(tagged, session)
    # The tagged m-line's own lines (none where it takes the session's).
    tagged_own = _own_lines(tagged)
    changed = False
    for index, section in enumerate(sections):
        if section is tagged or _mid(section) not in mids:
            continue
        if _shared_lines(section, session) == shared:
            continue
        kept = [line for line in section if _attribute(line) not in _SHARED]
        sections[index] = kept + tagged_own
        changed = True
    if not changed:
        return sdp
    out = session + [line for section in sections for line in section]
    return newline.join(out) + newline

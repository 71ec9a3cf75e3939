"""Taking access away takes it away: when the auth file changes (`camgate token revoke`,
`camgate password`, `camgate password --remove`, run while camgate runs), every browser
session and every WHEP peer connection opened with a credential that no longer stands is
ended. PTZ data channels also ask before each command, so none slips in between."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from gateway.auth.store import AuthFileError

if TYPE_CHECKING:
    from gateway.auth.service import Authenticator
    from gateway.webrtc.session import WhepSessions

log = logging.getLogger("camgate.auth")

# How often the auth file is checked (one stat): the most a revoked viewer keeps watching.
CHECK_INTERVAL_S = 1.0


async def watch_revocations(
    auth: Authenticator, sessions: WhepSessions, interval_s: float = CHECK_INTERVAL_S
) -> None:
    """Run until cancelled: end what revoked credentials opened, soon after the change."""
    seen = auth.store.version
    last_error = ""
    while True:
        await asyncio.sleep(interval_s)
        try:
            auth.store.reload()
        except AuthFileError as exc:
            if str(exc) != last_error:  # once per distinct problem, not every second
                log.error("%s (access stays as it was)", exc)
                last_error = str(exc)
            continue
        last_error = ""
        if auth.store.version != seen:
            seen = auth.store.version
            await end_revoked(auth, sessions)


async def end_revoked(auth: Authenticator, sessions: WhepSessions) -> int:
    """Sign out revoked browser sessions and close their viewers; returns the number of
    viewers closed."""
    signed_out = auth.end_revoked_sessions()
    ended = [s for s in sessions if s.owner is not None and not auth.still_valid(s.owner)]
    if signed_out or ended:
        log.info(
            "access revoked: %d browser session(s) signed out, %d viewer(s) closed",
            signed_out,
            len(ended),
        )
    await asyncio.gather(*(sessions.close(session) for session in ended))
    return len(ended)

"""What every camera source is: something that produces AccessUnits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from gateway.media.accessunit import AccessUnit


class SourceError(Exception):
    """The camera is unreachable or its stream failed. The message is safe to show
    users and to log: it never contains a credential."""


class SourceLimitError(SourceError):
    """The camera sent more than a cap allows (gateway.media.limits): the data was
    dropped and the connection is given up, which returns its memory."""


class Source(Protocol):
    description: str  # safe for logs and the API: never a credential
    sdp_parameter_sets: list[bytes]  # SPS/PPS known out of band (RTSP sprop-parameter-sets)

    async def run(self, emit: Callable[[AccessUnit], None]) -> None:
        """Connect, then call emit() for every whole picture, in order, until cancelled.
        Raises SourceError when the camera is unreachable or the stream ends."""
        ...

    def request_keyframe(self) -> bool:
        """Ask for an IDR now; False if this source cannot make one."""
        ...

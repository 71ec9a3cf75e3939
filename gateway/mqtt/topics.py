"""camgate's MQTT topic tree (README "MQTT"). Pure: no I/O.

<prefix>/available                 online | offline (retained; the Last Will says offline)
<prefix>/<camera>/state            JSON status (retained)
<prefix>/<camera>/ptz              commands in (Frigate's words or JSON)
<prefix>/<camera>/ptz/state        last command and presets (retained)
<prefix>/<camera>/ptz/error        why a command was refused
<prefix>/<camera>/snapshot/get     any payload: publish a snapshot
<prefix>/<camera>/snapshot         JPEG bytes (retained)
<prefix>/<camera>/snapshot/error   why there is no snapshot
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Inbound(StrEnum):
    """What a message on one of camgate's subscriptions is."""

    PTZ = "ptz"
    SNAPSHOT_GET = "snapshot/get"
    STATE = "state"  # retained state of some camera (stale ones are cleared)
    HA_STATUS = "ha_status"  # Home Assistant's birth/last-will message
    DISCOVERY = "discovery"  # a retained discovery config under our node id


@dataclass(frozen=True, slots=True)
class Route:
    kind: Inbound
    camera: str | None = None  # PTZ, SNAPSHOT_GET, STATE
    object_id: str | None = None  # DISCOVERY: <camera>_<entity>


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str
    discovery_prefix: str

    @property
    def available(self) -> str:
        return f"{self.prefix}/available"

    @property
    def node_id(self) -> str:
        """Groups this gateway's discovery configs (two gateways need two prefixes)."""
        return "".join(c if c.isalnum() or c in "_-" else "_" for c in self.prefix)

    def camera(self, camera: str, leaf: str) -> str:
        return f"{self.prefix}/{camera}/{leaf}"

    def state(self, camera: str) -> str:
        return self.camera(camera, "state")

    def ptz(self, camera: str) -> str:
        return self.camera(camera, "ptz")

    def ptz_state(self, camera: str) -> str:
        return self.camera(camera, "ptz/state")

    def ptz_error(self, camera: str) -> str:
        return self.camera(camera, "ptz/error")

    def snapshot(self, camera: str) -> str:
        return self.camera(camera, "snapshot")

    def snapshot_get(self, camera: str) -> str:
        return self.camera(camera, "snapshot/get")

    def snapshot_error(self, camera: str) -> str:
        return self.camera(camera, "snapshot/error")

    @property
    def ha_status(self) -> str:
        return f"{self.discovery_prefix}/status"

    def discovery(self, component: str, object_id: str) -> str:
        return f"{self.discovery_prefix}/{component}/{self.node_id}/{object_id}/config"

    def subscriptions(self, discovery: bool) -> list[str]:
        topics = [self.ptz("+"), self.snapshot_get("+"), self.state("+")]
        if discovery:
            topics += [self.ha_status, self.discovery("+", "+")]
        return topics

    def route(self, topic: str) -> Route | None:
        """Which subscription `topic` arrived on; None for anything else."""
        if topic == self.ha_status:
            return Route(Inbound.HA_STATUS)
        own = _strip_prefix(topic, self.prefix)
        if own is not None:
            camera, _, leaf = own.partition("/")
            if camera and "/" not in camera:
                for kind in (Inbound.PTZ, Inbound.SNAPSHOT_GET, Inbound.STATE):
                    if leaf == kind.value:
                        return Route(kind, camera=camera)
        found = _strip_prefix(topic, self.discovery_prefix)
        if found is not None:
            parts = found.split("/")
            if len(parts) == 4 and parts[1] == self.node_id and parts[3] == "config":
                return Route(Inbound.DISCOVERY, object_id=parts[2])
        return None


def _strip_prefix(topic: str, prefix: str) -> str | None:
    return topic[len(prefix) + 1 :] if topic.startswith(prefix + "/") else None

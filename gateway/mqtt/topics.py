"""camgate's MQTT topic tree (docs/mqtt.md). Pure: no I/O.

<prefix> is `camgate/<node id>` unless configured: each gateway has its own tree.
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
    # Retained by camgate before node ids, with this config's prefix (cleared once seen)
    LEGACY_DISCOVERY = "legacy_discovery"
    LEGACY_STATE = "legacy_state"
    AVAILABLE = "available"  # our own availability coming back: earlier retained ones are in


@dataclass(frozen=True, slots=True)
class Route:
    kind: Inbound
    camera: str | None = None  # PTZ, SNAPSHOT_GET, STATE
    object_id: str | None = None  # DISCOVERY: <camera>_<entity>


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str
    discovery_prefix: str
    node_id: str  # groups this gateway's discovery configs; unique per gateway
    # The prefix of camgate before node ids with this config (docs/mqtt.md "Upgrading")
    legacy_prefix: str | None = None

    @property
    def available(self) -> str:
        return f"{self.prefix}/available"

    @property
    def legacy_node_id(self) -> str | None:
        """The discovery node id camgate used before node ids: made from the prefix."""
        return node_id_text(self.legacy_prefix) if self.legacy_prefix is not None else None

    @property
    def entity_prefix(self) -> str:
        """Starts Home Assistant's entity ids: as before node ids, so upgrading keeps them."""
        return self.legacy_node_id or self.node_id

    @property
    def migrating_discovery(self) -> bool:
        return self.legacy_node_id not in (None, self.node_id)

    @property
    def migrating_topics(self) -> bool:
        return self.legacy_prefix not in (None, self.prefix)

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

    def legacy_discovery(self) -> str:
        return f"{self.discovery_prefix}/+/{self.legacy_node_id}/+/config"

    def legacy_camera(self, camera: str, leaf: str) -> str:
        return f"{self.legacy_prefix}/{camera}/{leaf}"

    def subscriptions(self, discovery: bool) -> list[str]:
        """Ours, then the old layout's; our availability last: once it is back, the
        broker has sent every retained message of the others."""
        topics = [self.ptz("+"), self.snapshot_get("+"), self.state("+")]
        if discovery:
            topics += [self.ha_status, self.discovery("+", "+")]
            if self.migrating_discovery:
                topics.append(self.legacy_discovery())
        if self.migrating_topics:
            topics.append(self.legacy_camera("+", "state"))
        return [*topics, self.available]

    def route(self, topic: str) -> Route | None:
        """Which subscription `topic` arrived on; None for anything else."""
        if topic == self.ha_status:
            return Route(Inbound.HA_STATUS)
        if topic == self.available:
            return Route(Inbound.AVAILABLE)
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
            if len(parts) == 4 and parts[3] == "config":
                if parts[1] == self.node_id:
                    return Route(Inbound.DISCOVERY, object_id=parts[2])
                if self.migrating_discovery and parts[1] == self.legacy_node_id:
                    return Route(Inbound.LEGACY_DISCOVERY, object_id=parts[2])
        if self.migrating_topics and self.legacy_prefix is not None:
            old = _strip_prefix(topic, self.legacy_prefix)
            camera, _, leaf = (old or "").partition("/")
            if camera and leaf == "state":
                return Route(Inbound.LEGACY_STATE, camera=camera)
        return None


def node_id_text(prefix: str) -> str:
    """The node id camgate made from its topic prefix before node ids (exactly so)."""
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in prefix)


def _strip_prefix(topic: str, prefix: str) -> str | None:
    return topic[len(prefix) + 1 :] if topic.startswith(prefix + "/") else None

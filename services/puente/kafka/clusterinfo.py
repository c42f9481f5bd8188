"""What ``puente kafka up`` started, as recorded in ``<state>/kafka/cluster.json``: read by the
local broker's manager and by every client that looks for the local broker (no cluster
configured), so that the one does not depend on the other."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from puente.config import Settings
from puente.errors import PuenteError
from puente.kafka.broker_config import NodePorts

HOST = "127.0.0.1"


class LocalKafkaError(PuenteError):
    reason = "LOCAL_KAFKA_FAILED"


@dataclass
class NodeInfo:
    node_id: int
    client_port: int
    internal_port: int
    controller_port: int
    directory: str
    pid: int | None = None


@dataclass
class ClusterInfo:
    """What ``up`` started, persisted as cluster.json."""

    version: str
    cluster_id: str
    nodes: list[NodeInfo]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{HOST}:{n.client_port}" for n in self.nodes)

    def ports(self) -> list[NodePorts]:
        return [
            NodePorts(n.node_id, n.client_port, n.internal_port, n.controller_port)
            for n in self.nodes
        ]

    @classmethod
    def load(cls, path: Path) -> ClusterInfo:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            version=raw["version"],
            cluster_id=raw["cluster_id"],
            nodes=[NodeInfo(**n) for n in raw["nodes"]],
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


def cluster_info_path(settings: Settings) -> Path:
    """Where the local broker's record lives."""
    return settings.state_dir / "kafka" / "cluster.json"


def read_cluster_info(settings: Settings) -> ClusterInfo | None:
    """The local broker's record, or None when none was started from this state directory."""
    path = cluster_info_path(settings)
    if not path.is_file():
        return None
    try:
        return ClusterInfo.load(path)
    except (ValueError, KeyError, TypeError) as exc:
        raise LocalKafkaError(
            f"{path} is corrupt ({exc})",
            hint="run `puente kafka reset` to delete the local broker's state and start anew",
        ) from exc

"""A small federation for the witness tests: node and witness keys of a few states, a signed
trust list over them, and logs whose checkpoints the test makes (forks included)."""

from __future__ import annotations

from dataclasses import dataclass, field

from puente.codec.registry import Registry
from puente.evidence.keys import SigningKey
from puente.evidence.log import AuditLog, CheckpointRecord, audit_log_id
from puente.evidence.trust import KeyEntry, TrustList, Usage, node_holder
from puente.evidence.verify import Verifier
from puente.evidence.witness import witness_key_name

T0 = 1_767_225_600_000
DAY = 86_400_000
STATES = ("MX", "GT", "HN", "CR", "PA")
NODE_USAGES = frozenset({Usage.DELIVERY, Usage.CHECKPOINT})


@dataclass
class Federation:
    registry: Registry
    root: SigningKey = field(default_factory=lambda: SigningKey.generate("puente.operator/root"))
    nodes: dict[str, SigningKey] = field(default_factory=dict)
    witnesses: dict[str, SigningKey] = field(default_factory=dict)
    extra: list[KeyEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        for s in STATES:
            self.nodes[s] = SigningKey.generate(f"puente.node/{s}")
            self.witnesses[s] = SigningKey.generate(witness_key_name(s))

    def trust_list(self) -> TrustList:
        entries = [
            KeyEntry(k.public, node_holder(s), NODE_USAGES, T0) for s, k in self.nodes.items()
        ]
        entries += [
            KeyEntry(k.public, node_holder(s), frozenset({Usage.WITNESS}), T0)
            for s, k in self.witnesses.items()
        ]
        tl = TrustList(1, T0, T0 + 30 * DAY, tuple(entries + self.extra))
        return TrustList.open(tl.sign(self.root), [self.root.public], now=T0 + 1)

    def verifier(self) -> Verifier:
        return Verifier(trust_list=self.trust_list(), registry=self.registry)

    def log(self, state: str = "MX") -> AuditLog:
        return AuditLog(audit_log_id(state, 0))

    def grow(
        self, log: AuditLog, n: int, *, tag: bytes = b"", t: int = T0 + 1000
    ) -> CheckpointRecord:
        """Append ``n`` leaves and sign a checkpoint of the log's node."""
        state = log.log_id.split("/")[1]
        for _ in range(n):
            log.append(b"leaf %d %s" % (log.size, tag))
        return log.checkpoint(self.nodes[state], time_ms=t)

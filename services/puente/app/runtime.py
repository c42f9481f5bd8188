"""What every command and service is built from, made once from the settings.

Commands take a :class:`Runtime` (``Runtime.from_settings()``) and ask it for what they need —
topic names, the schema registry, the Kafka endpoint, a principal's credential, the key store,
the trust anchors, a trust tracker fed by the trust topic (then a file, then the embedded
default's list), a state's node, the early-warning evaluator — instead of each building its own
from the settings.
Nothing here creates a key: that is the operator's set-up (:mod:`puente.app.operator`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from puente.codec.registry import Registry
from puente.config import Settings, get_settings
from puente.errors import ConfigError
from puente.evidence._time import now_ms
from puente.evidence.finality import default_quorum
from puente.evidence.keys import SigningKey
from puente.evidence.keystore import GENESIS_FILE, TRUST_LIST_FILE, KeyStore
from puente.evidence.trust import TrustAnchor, Usage, service_holder
from puente.evidence.trustsource import (
    Fetch,
    TrustTracker,
    file_fetch,
    local_anchor,
    read_anchor,
)
from puente.kafka.connection import KafkaEndpoint, admin_credential, credential, resolve_endpoint
from puente.kafka.trustfeed import TrustTopicReader
from puente.members import load_members
from puente.policy.store import PolicyStore
from puente.receipts.clock import Clock, clock
from puente.receipts.tracker import ReceiptTracker, TrackerConfig
from puente.secrets import Credential
from puente.service.aggregates import Aggregation
from puente.service.nodekeys import NodeVault, StoreKeys
from puente.service.secret import pseudonym_secret
from puente.service.worker import Node, ServiceConfig
from puente.topics import Naming
from puente.warnings.loader import load_triggers
from puente.warnings.service import WarningsService
from puente.witness.service import Witness, WitnessConfig
from puente.witness.shared import Reads
from puente_gateway.edge import served_states


@dataclass
class Runtime:
    """The wiring of one process. Cheap to make; each piece is built on first use."""

    settings: Settings = field(default_factory=get_settings)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Runtime:
        """The runtime of ``settings`` (default: the process settings)."""
        return cls(settings or get_settings())

    # --- names, schemas, members ---------------------------------------------------------

    @cached_property
    def naming(self) -> Naming:
        """Topic, principal, group and transactional-id names under the deployment's prefix."""
        return Naming(self.settings.kafka.topic_prefix)

    @cached_property
    def registry(self) -> Registry:
        """Every schema version under ``schemas_dir``."""
        return Registry.load(self.settings.schemas_dir)

    @cached_property
    def members(self) -> tuple[str, ...]:
        """The member states' codes (``policies/members.yaml``)."""
        return load_members(self.settings.policies_dir).codes

    # --- Kafka -----------------------------------------------------------------------------

    @cached_property
    def endpoint(self) -> KafkaEndpoint:
        """The configured cluster, or the local broker of the state directory."""
        return resolve_endpoint(self.settings)

    def credential(self, principal: str) -> Credential:
        """A provisioned principal's credential (the secrets directory)."""
        return credential(self.settings, principal)

    def member_credential(self, member: str) -> Credential:
        """Member state ``member``'s own principal."""
        return self.credential(self.naming.member_principal(member))

    def service_credential(self, role: str) -> Credential:
        """A Puente service's principal (``policy``, ``gateway``, ``auditor``, ``operator``…)."""
        return self.credential(self.naming.service_principal(role))

    def node_credential(self, member: str) -> Credential:
        """Member state ``member``'s node principal."""
        return self.credential(self.naming.node_principal(member))

    def tracker_credential(self, member: str) -> Credential:
        """Member state ``member``'s receipt tracker principal."""
        return self.credential(self.naming.tracker_principal(member))

    def witness_credential(self, member: str) -> Credential:
        """Member ``member``'s witness principal's credential."""
        return self.credential(self.naming.witness_principal(member))

    def gateway_credential(self, member: str) -> Credential:
        """Member state ``member``'s gateway principal (its edge)."""
        return self.credential(self.naming.gateway_principal(member))

    def gateway_credentials(self) -> dict[str, Credential]:
        """The gateway credential of each state this process's gateway serves
        (:attr:`gateway_states`)."""
        return {s: self.gateway_credential(s) for s in self.gateway_states}

    @property
    def gateway_states(self) -> tuple[str, ...]:
        """The states this process's gateway serves: ``PUENTE_GATEWAY__STATES``, else every
        member state (the embedded default). ConfigError for a state that is not a member."""
        return served_states(self.settings.gateway, self.members)

    def admin_credential(self) -> Credential:
        """The cluster administrator (provisioning only)."""
        return admin_credential(self.settings)

    # --- keys and trust --------------------------------------------------------------------

    @cached_property
    def keys(self) -> KeyStore:
        """The embedded default's key store (read here; written only by operator commands)."""
        return KeyStore(self.settings.keys_dir)

    def anchors(self, specs: list[str] | None = None) -> TrustAnchor:
        """The trust anchor: the genesis trust list or operator root verifier keys given
        (:func:`read_anchor`), else the key store's genesis list, else its ``operator:root``
        keys (a single-root deployment). ConfigError when there is none."""
        if specs:
            return read_anchor(specs)
        found = local_anchor(self.settings.keys_dir)
        if found is None:
            raise ConfigError(
                "no trust anchor: give the genesis trust list (a file) or, in a single-root "
                f"deployment, the operator's root verifier key; {self.settings.keys_dir} has "
                f"neither {GENESIS_FILE} nor an operator root key",
                reason="TRUST_ANCHOR_MISSING",
            )
        return found

    def trust_tracker(
        self,
        principal: Credential,
        *,
        anchors: TrustAnchor | None = None,
        trust_file: Path | None = None,
        serial_file: Path | None = None,
    ) -> tuple[TrustTracker, TrustTopicReader, list[Fetch]]:
        """The one way trust is loaded: a tracker over the anchors, fed by the trust topic (read
        as ``principal``), then ``trust_file``, then the embedded default's signed list. Returns
        the tracker, the topic reader (close it when done) and the sources to refresh from."""
        tracker = TrustTracker(
            anchors if anchors is not None else self.anchors(),
            self.registry,
            serial_file=serial_file,
        )
        topic = TrustTopicReader(
            self.endpoint,
            principal,
            self.naming,
            timeout_s=self.settings.kafka.request_timeout_s,
        )
        tracker.history = topic.history  # the chain, should the newest need it
        fetches: list[Fetch] = [topic.newest]
        for path in (trust_file, self.settings.keys_dir / TRUST_LIST_FILE):
            if path is not None and (path == trust_file or path.is_file()):
                fetches.append(file_fetch(path))
        return tracker, topic, fetches

    def receipt_key(self, member: str, at: int) -> SigningKey:
        """Member ``member``'s current receipt-signing key from the key store (never made)."""
        from puente.evidence.trust import member_holder

        return self.keys.current(member_holder(member), usage=Usage.RECEIPT, at=at)

    # --- the nodes -------------------------------------------------------------------------

    def node_keys(self, member: str) -> StoreKeys:
        """Member ``member``'s node keys: its own key store (``PUENTE_POLICY__KEYS_DIR``, as its
        state provisioned it), else the embedded default's."""
        return StoreKeys(KeyStore(self.settings.policy.keys_dir or self.settings.keys_dir), member)

    def policy_store(self) -> PolicyStore:
        """The policies, with the node's pseudonymisation secret."""
        return PolicyStore(
            self.settings.policies_dir,
            self.settings.schemas_dir,
            secret=pseudonym_secret(self.settings),
        )

    def node(
        self, member: str, *, instance: str, mode: str | None = None, seal: bool | None = None
    ) -> tuple[Node, TrustTopicReader]:
        """One instance of member ``member``'s node, wired from the settings, and the trust
        topic reader it follows the trust list with (close it when the node stops)."""
        cred = self.node_credential(member)
        tracker, topic, fetches = self.trust_tracker(cred)
        config = ServiceConfig.from_settings(self.settings.policy, mode=mode)
        if seal is not None:
            config = dataclasses.replace(config, seal=seal)
        keys = self.node_keys(member)
        node = Node(
            origin=member,
            endpoint=self.endpoint,
            credential=cred,
            naming=self.naming,
            registry=self.registry,
            policies=self.policy_store(),
            keys=keys,
            trust=tracker,
            trust_sources=tuple(fetches),
            config=config,
            instance=f"{instance}-{member}",
            aggregation=self.aggregation(member, keys, tracker),
        )
        return node, topic

    def aggregation(self, member: str, keys: StoreKeys, trust: TrustTracker) -> Aggregation | None:
        """Early warning's counting in ``member``'s node: the policies' triggers, signed with
        its node key, its counts sealed to itself; None (logged) when it cannot be on."""
        return Aggregation.load(
            member,
            self.settings.policies_dir,
            self.settings.schemas_dir,
            keys=keys,
            vault=NodeVault(trust, keys, member),
            registry=self.registry,
        )

    # --- early warning ---------------------------------------------------------------------

    def warnings_key(self, at: int) -> SigningKey:
        """The evaluator's key (``service:warnings``, usage early-warning) from its key store
        (``PUENTE_WARNINGS__KEYS_DIR``, else the embedded default's); never made here."""
        store = KeyStore(self.settings.warnings.keys_dir or self.settings.keys_dir)
        return store.current(service_holder("warnings"), usage=Usage.EARLY_WARNING, at=at)

    def warnings_evaluator(
        self,
        *,
        instance: str,
        anchors: list[str] | None = None,
        trust_file: Path | None = None,
    ) -> tuple[WarningsService, TrustTopicReader]:
        """``puente serve warnings``: the evaluator, as the ``warnings`` service principal,
        over the policies' triggers, and the trust topic reader it follows (close it)."""
        cred = self.service_credential("warnings")
        tracker, topic, fetches = self.trust_tracker(
            cred, anchors=self.anchors(anchors), trust_file=trust_file
        )
        service = WarningsService(
            endpoint=self.endpoint,
            credential=cred,
            naming=self.naming,
            registry=self.registry,
            triggers=load_triggers(self.settings.policies_dir, self.settings.schemas_dir),
            key=self.warnings_key(now_ms()),
            trust=tracker,
            trust_sources=fetches,
            trust_refresh_s=self.settings.warnings.trust_refresh_s,
            instance=instance,
        )
        return service, topic

    # --- the witnesses ----------------------------------------------------------------------

    def quorum(self) -> int:
        """Cosignatures of distinct other states' witnesses that make a checkpoint final
        (``PUENTE_WITNESS__QUORUM``; unset: a majority of the other members)."""
        return self.settings.witness.quorum or default_quorum(self.members)

    @cached_property
    def witness_reads(self) -> Reads:
        """What the witnesses this runtime makes share (``--all``, the demo): each record
        decoded and each log signature checked once in the process, not once per witness."""
        return Reads()

    def witness(
        self, member: str, *, instance: str, checkpoints_topic: str | None = None
    ) -> tuple[Witness, TrustTopicReader]:
        """Member ``member``'s witness, as its own principal, with its witness key (the
        witness key store, else the node's, else the embedded default's), and the trust topic
        reader it verifies checkpoints with (close it when the witness stops)."""
        cfg = self.settings.witness
        cred = self.witness_credential(member)
        tracker, topic, fetches = self.trust_tracker(cred)
        store = KeyStore(cfg.keys_dir or self.settings.policy.keys_dir or self.settings.keys_dir)
        return (
            Witness(
                state=member,
                endpoint=self.endpoint,
                credential=cred,
                naming=self.naming,
                registry=self.registry,
                key=StoreKeys(store, member).witness_key,
                trust=tracker,
                trust_sources=tuple(fetches),
                config=WitnessConfig(
                    poll_s=cfg.poll_s,
                    max_batch=cfg.max_batch,
                    trust_refresh_s=cfg.trust_refresh_s,
                    linger_s=cfg.linger_s,
                    idle_commit_s=cfg.idle_commit_s,
                ),
                instance=f"{instance}-{member}",
                checkpoints_topic=checkpoints_topic,
                reads=self.witness_reads,
            ),
            topic,
        )

    # --- the receipt trackers --------------------------------------------------------------

    def tracker(
        self, member: str, *, instance: str, clock_: Clock | None = None
    ) -> tuple[ReceiptTracker, TrustTopicReader]:
        """Member ``member``'s receipt tracker, wired from the settings (its clock sped up by
        ``receipts.clock_scale`` unless ``clock_`` is given), and the trust topic reader it
        verifies receipts with (close it when the tracker stops). It signs overdue reports
        with the state's node keys (:meth:`node_keys`)."""
        cfg = self.settings.receipts
        cred = self.tracker_credential(member)
        tracker, topic, fetches = self.trust_tracker(cred)
        return (
            ReceiptTracker(
                origin=member,
                endpoint=self.endpoint,
                credential=cred,
                naming=self.naming,
                registry=self.registry,
                members=self.members,
                keys=self.node_keys(member),
                trust=tracker,
                trust_sources=tuple(fetches),
                clock=clock_ or clock(cfg.clock_scale),
                config=TrackerConfig(
                    poll_s=cfg.poll_s,
                    max_batch=cfg.max_batch,
                    trust_refresh_s=cfg.trust_refresh_s,
                    keep_closed_ms=cfg.keep_closed_days * 86_400_000,
                ),
                instance=f"{instance}-{member}",
            ),
            topic,
        )

"""The embedded default's set-up: what a deployment needs before anything is signed, made
idempotently — each member state's root key, node keys, receipt key and encryption keys, the
early-warning evaluator's key, a trust list the members sign (the first one is the genesis
list, the trust anchor) — and publishing the trust list. Only operator commands
(``puente demo``, ``puente keys …``) call this: partner-side and auditor commands never create
keys.

On the embedded default every key lives in ``<state>/keys`` (private parts 0600). In a real
deployment a member state keeps its own private key and the operator imports only its public
part (``puente keys import``); this module never needs a member's private key.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from puente.config import Settings
from puente.errors import PuenteError
from puente.evidence.errors import TrustListError
from puente.evidence.keys import SigningKey
from puente.evidence.keystore import GENESIS_FILE, KeyStore, root_key_name
from puente.evidence.note import Note
from puente.evidence.trust import (
    TRUST_LIST_KEY,
    TrustAnchor,
    TrustList,
    Usage,
    member_holder,
    node_holder,
    service_holder,
    trust_history_key,
)
from puente.evidence.trustissue import issue, sign_as_roots
from puente.evidence.witness import witness_key_name
from puente.kafka.clients import producer, start
from puente.kafka.connection import KafkaEndpoint
from puente.kafka.plan import Plan
from puente.kafka.provision import Change
from puente.secrets import Credential
from puente.topics import TRUST, Naming


@dataclass(frozen=True)
class Evidence:
    """The keys and trust material of one (embedded) deployment."""

    store: KeyStore
    anchors: TrustAnchor  # the genesis list's roots and quorum: who may sign trust lists
    trust_list: bytes  # the signed note

    def node_key(self, member: str, at: int | None = None) -> SigningKey:
        """Member ``member``'s node signing key valid at ``at`` (default: now)."""
        at = at if at is not None else int(time.time() * 1000)
        return self.store.current(node_holder(member), usage=Usage.DELIVERY, at=at)

    def open_trust_list(self, now_ms: int | None = None) -> TrustList:
        return TrustList.open(self.trust_list, self.anchors, now=now_ms or int(time.time() * 1000))


def _has_key(store: KeyStore, holder: str, usage: Usage, at: int) -> bool:
    for meta in store.key_metas():
        if meta.holder != holder or usage.value not in meta.usages:
            continue
        if meta.is_encryption:
            if meta.encryption_entry(store.encryption_public(meta)).status_at(at) == "valid":
                return True
        elif meta.entry(store.public(meta)).status_at(at) == "valid":
            return True
    return False


def ensure_evidence(
    settings: Settings, members: Sequence[str], *, floor_digest: bytes | None = None
) -> Evidence:
    """Create whatever is missing — per member state its root key (``member:CC``, usage
    trust-list, named ``puente.root/CC``: the key with which the state signs trust lists), its
    node's signing and encryption keys, its witness key and its own receipt-signing and
    encryption keys; the early-warning evaluator's key (``service:warnings``, usage
    early-warning) — and have the members sign a new trust list (pinning the regional floor:
    ``floor_digest``, by default the SHA-256 of the policies' ``regional.yaml``; naming a
    majority of the roots as its quorum) when keys or the floor changed or it nears expiry. The
    first such list is the genesis list (``trust-genesis.note``), the trust anchor; no operator
    key signs anything.

    A state directory made before (a single-root list signed by ``operator:root``) migrates:
    the first members' list is also signed by the operator root, so verifiers still anchored on
    that key take it, and it becomes the genesis list.

    This is the embedded default, where every member's keys live in ``<state>/keys``; in a
    federation each state makes its own private keys, hands in only the public parts and signs
    with ``puente trust sign --as CC`` (docs/evidence.md)."""
    store = KeyStore(settings.keys_dir)
    now = int(time.time() * 1000)
    floor = floor_digest if floor_digest is not None else regional_floor_digest(settings)
    for code in members:
        if not _has_key(store, member_holder(code), Usage.TRUST_LIST, now):
            store.generate(
                member_holder(code),
                valid_from=now,
                usages=(Usage.TRUST_LIST,),
                name=root_key_name(code),
            )
        for holder, signing_usage in (
            (node_holder(code), Usage.DELIVERY),
            (member_holder(code), Usage.RECEIPT),
        ):
            if not _has_key(store, holder, signing_usage, now):
                store.generate(holder, valid_from=now)
            if not _has_key(store, holder, Usage.ENCRYPTION, now):
                store.generate_encryption(holder, valid_from=now)
        # The state's witness key: its own key (not the node's), held by the state's node.
        if not _has_key(store, node_holder(code), Usage.WITNESS, now):
            store.generate(
                node_holder(code),
                valid_from=now,
                usages=(Usage.WITNESS,),
                name=witness_key_name(code),
            )
    evaluator = service_holder("warnings")
    if not _has_key(store, evaluator, Usage.EARLY_WARNING, now):
        store.generate(evaluator, valid_from=now, usages=(Usage.EARLY_WARNING,))
    issued = issue(store, [store], floor=floor, now=now)
    # Every root is here, so only a broken store falls short of quorum.
    if issued.current is None or issued.proposal is not None:
        raise TrustListError(
            f"the trust list in {store.root} lacks signatures of {', '.join(issued.missing)}",
            reason="TRUST_QUORUM_MISSING",
            hint=f"their root keys are not in {store.root}; sign the proposal "
            f"{issued.proposal} with `puente trust sign --as CC`",
        )
    anchor = TrustAnchor.genesis((store.root / GENESIS_FILE).read_bytes())
    return Evidence(store, anchor, issued.current)


def members_sign(store: KeyStore, unsigned: TrustList, *, at: int) -> bytes:
    """``unsigned`` (naming its quorum) signed by every root key valid at ``at`` of every root
    holder it names that ``store`` holds the private key of (on the embedded default: every
    member)."""
    note = Note.unsigned(unsigned.text())
    return sign_as_roots(note, [store], [TrustAnchor.of(unsigned)], at=at).to_bytes()


def regional_floor_digest(settings: Settings) -> bytes:
    """The SHA-256 of the policies' ``regional.yaml``: the floor a federation pins (anyone can
    compute it with ``sha256sum policies/regional.yaml``)."""
    return hashlib.sha256((settings.policies_dir / "regional.yaml").read_bytes()).digest()


async def publish_trust_list(
    endpoint: KafkaEndpoint, operator: Credential, naming: Naming, trust_list: bytes
) -> None:
    """Put the signed trust list on the (compacted) trust topic, as the operator principal:
    under its own serial's key (kept: the chain verifiers follow), then as the newest."""
    serial = TrustList.from_text(Note.parse(trust_list).text).serial
    p = producer(endpoint, operator)
    await start(p, endpoint, operator)
    try:
        await p.send_and_wait(naming.topic(TRUST), trust_list, key=trust_history_key(serial))
        await p.send_and_wait(naming.topic(TRUST), trust_list, key=TRUST_LIST_KEY)
    finally:
        await p.stop()


class KafkaUnreachable(PuenteError):
    reason = "KAFKA_UNREACHABLE"


def provision_members(settings: Settings, *, dry_run: bool) -> tuple[Plan, list[Change]]:
    """Build the plan for policies/members.yaml, diff it against the cluster, apply it."""
    from puente.kafka.admin import admin_client
    from puente.kafka.connection import admin_credential, resolve_endpoint
    from puente.kafka.plan import build_plan
    from puente.kafka.provision import apply, diff, read_state
    from puente.members import load_members
    from puente.secrets import SecretStore
    from puente.topics import Naming

    members = load_members(settings.policies_dir)
    endpoint = resolve_endpoint(settings)
    secrets = SecretStore(settings.secrets_dir)
    try:
        with admin_client(endpoint, admin_credential(settings)) as admin:
            brokers = len(admin.describe_cluster()["brokers"])
            plan = build_plan(
                Naming(settings.kafka.topic_prefix),
                members.codes,
                partitions=settings.local.partitions,
                brokers=brokers,
            )
            state = read_state(admin, plan)
            lost = [p.name for p in plan.principals if secrets.get(p.name) is None]
            changes = diff(plan, state, missing_secrets=lost)
            if not dry_run:
                apply(admin, plan, changes, secrets)
    except PuenteError:
        raise
    except Exception as exc:
        raise KafkaUnreachable(
            f"cannot provision through {endpoint.bootstrap}: {type(exc).__name__}: {exc}",
            hint="is Kafka up (`puente kafka status`) and are the admin credentials right?",
        ) from exc
    return plan, changes

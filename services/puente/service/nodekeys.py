"""A node's keys and the federation's public keys, as its processors use them.

A node signs with its state's node key (``node:CC``, usages delivery, checkpoint and
early-warning: its deliveries, checkpoints and early-warning aggregates), opens the notices its
agencies sealed to its state's node encryption key, and seals each delivery to the recipient's
current encryption key from the trust list. Keys rotate while the node runs: the processor asks
for the signing key at every batch (:meth:`NodeKeys.signing_key`), and the trust list it seals
with is the one the node follows (:class:`TrustSealer`). What the node keeps on the shared
cluster for itself alone (early warning's raw counts) it seals to its own encryption key
(:class:`NodeVault`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from puente.evidence.enckeys import EncryptionPublicKey, KeyRing
from puente.evidence.errors import SealError
from puente.evidence.keys import SigningKey
from puente.evidence.keystore import KeyStore
from puente.evidence.seal import open_state, seal_state, sealing_key
from puente.evidence.trust import Usage, member_holder, node_holder
from puente.evidence.trustsource import TrustTracker

# How often a node asks its key store again (a rotated key is used after this); the store parses
# its files again only when they changed (puente.evidence.keystore.must_read).
KEY_RELOAD_S = 5.0


class NodeKeys(Protocol):
    """The private keys of one node."""

    def signing_key(self, at: int) -> SigningKey:
        """The key that signs deliveries and checkpoints at ``at`` (Unix ms)."""
        ...

    def early_warning_key(self, at: int) -> SigningKey:
        """The key that signs early-warning aggregates at ``at`` (usage early-warning)."""
        ...

    def ingress_keys(self) -> KeyRing | None:
        """The key ring that opens sealed ingress notices; None: ingress in clear."""
        ...


@dataclass(frozen=True)
class FixedKeys:
    """One signing key and, optionally, a key ring (tests, benchmarks, embedded tools)."""

    key: SigningKey
    ingress: KeyRing | None = None

    def signing_key(self, at: int) -> SigningKey:
        """The one key."""
        return self.key

    def early_warning_key(self, at: int) -> SigningKey:
        """The one key (it signs aggregates too)."""
        return self.key

    def ingress_keys(self) -> KeyRing | None:
        """The key ring, if any."""
        return self.ingress


@dataclass
class StoreKeys:
    """A node's keys from a key store directory, asked again every :data:`KEY_RELOAD_S` so
    that a rotated key (new files, a new trust list) is used without a restart (the store reads
    its files again only when they changed: an unchanged store costs a directory listing)."""

    store: KeyStore
    origin: str
    reload_s: float = KEY_RELOAD_S
    _signing: dict[Usage, tuple[float, SigningKey]] = field(default_factory=dict, repr=False)
    _ring: tuple[float, KeyRing] | None = field(default=None, repr=False)

    def signing_key(self, at: int) -> SigningKey:
        """The node's signing key valid at ``at`` (the newest such)."""
        return self._current(Usage.DELIVERY, at)

    def early_warning_key(self, at: int) -> SigningKey:
        """The node's key of usage ``early-warning`` valid at ``at``: what signs its aggregates
        (its signing key, which has that usage too unless the state listed it without)."""
        return self._current(Usage.EARLY_WARNING, at)

    def witness_key(self, at: int) -> SigningKey:
        """The state's witness key valid at ``at`` (``node:CC``, usage witness): what its
        witness cosigns other states' checkpoints and signs equivocation reports with."""
        return self._current(Usage.WITNESS, at)

    def _current(self, usage: Usage, at: int) -> SigningKey:
        cached = self._signing.get(usage)
        if cached is not None and time.monotonic() - cached[0] < self.reload_s:
            return cached[1]
        key = self.store.current(node_holder(self.origin), usage=usage, at=at)
        self._signing[usage] = (time.monotonic(), key)
        return key

    def ingress_keys(self) -> KeyRing:
        """Every encryption key the node still holds (old ones open what was sealed to them)."""
        cached = self._ring
        if cached is None or time.monotonic() - cached[0] >= self.reload_s:
            cached = (time.monotonic(), self.store.keyring(node_holder(self.origin)))
            self._ring = cached
        return cached[1]


class Sealer(Protocol):
    """Where a delivery to a recipient is sealed to."""

    def recipient_key(self, recipient: str, at: int) -> EncryptionPublicKey:
        """The recipient's encryption key valid at ``at``; raises (``KEY_UNKNOWN``) if none."""
        ...


@dataclass(frozen=True)
class TrustSealer:
    """Recipients' keys from the trust list a node follows (refreshed while it runs)."""

    trust: TrustTracker

    def recipient_key(self, recipient: str, at: int) -> EncryptionPublicKey:
        """The newest encryption key of ``member:<recipient>`` valid at ``at``."""
        return sealing_key(self.trust.verifier().trust_list, member_holder(recipient), at=at)


@dataclass(frozen=True)
class NodeVault:
    """What node ``origin`` keeps for itself alone on the shared cluster, sealed to its own
    encryption key (the newest the trust list it follows names) and opened with its key ring:
    the cluster's operators, and every other principal, see an envelope."""

    trust: TrustTracker
    keys: NodeKeys
    origin: str

    def seal(self, state: bytes, *, name: str, at: int) -> bytes:
        """``state`` sealed to this node (``name``: which state, bound into the seal)."""
        to = sealing_key(self.trust.verifier().trust_list, node_holder(self.origin), at=at)
        return seal_state(state, to=to, origin=self.origin, name=name).envelope

    def open(self, sealed: bytes, *, name: str) -> bytes:
        """What :meth:`seal` sealed; a :class:`~puente.evidence.errors.SealError` if it does
        not open (another node's, another state's, a key this node no longer holds)."""
        ring = self.keys.ingress_keys()
        if ring is None:
            raise SealError(
                f"node {self.origin} holds no encryption key", reason="SEAL_KEY_UNKNOWN"
            )
        return open_state(sealed, keys=ring, origin=self.origin, name=name).plaintext

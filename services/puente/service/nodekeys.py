"""A node's keys and the federation's public keys, as its processors use them.

A node signs with its state's node key (``node:CC``, usages delivery and checkpoint), opens the
notices its agencies sealed to its state's node encryption key, and seals each delivery to the
recipient's current encryption key from the trust list. Keys rotate while the node runs: the
processor asks for the signing key at every batch (:meth:`NodeKeys.signing_key`), and the trust
list it seals with is the one the node follows (:class:`TrustSealer`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from puente.evidence.enckeys import EncryptionPublicKey, KeyRing
from puente.evidence.keys import SigningKey
from puente.evidence.keystore import KeyStore
from puente.evidence.seal import sealing_key
from puente.evidence.trust import Usage, member_holder, node_holder
from puente.evidence.trustsource import TrustTracker

KEY_RELOAD_S = 5.0  # how often a node re-reads its key store (a rotated key is used after this)


class NodeKeys(Protocol):
    """The private keys of one node."""

    def signing_key(self, at: int) -> SigningKey:
        """The key that signs deliveries and checkpoints at ``at`` (Unix ms)."""
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

    def ingress_keys(self) -> KeyRing | None:
        """The key ring, if any."""
        return self.ingress


@dataclass
class StoreKeys:
    """A node's keys from a key store directory, re-read every :data:`KEY_RELOAD_S` so that a
    rotated key (new files, a new trust list) is used without a restart."""

    store: KeyStore
    origin: str
    reload_s: float = KEY_RELOAD_S
    _signing: tuple[float, SigningKey] | None = field(default=None, repr=False)
    _ring: tuple[float, KeyRing] | None = field(default=None, repr=False)

    def signing_key(self, at: int) -> SigningKey:
        """The node's signing key valid at ``at`` (the newest such)."""
        cached = self._signing
        if cached is not None and time.monotonic() - cached[0] < self.reload_s:
            return cached[1]
        key = self.store.current(node_holder(self.origin), usage=Usage.DELIVERY, at=at)
        self._signing = (time.monotonic(), key)
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

"""The trust list a long-running verifier follows: anchored, unexpired, never rolled back.

A subscriber, the gateway or an auditor that runs for days cannot verify against the list it
read at start: the list expires, keys are rotated and revoked. :class:`TrustTracker` holds the
current list and takes each newer one offered (from the trust topic, a file, ...) only when:

* a quorum of the roots of the list in force signed it — at start, of the trust anchor: the
  genesis list given out of band, or (a single-root deployment) the operator root's keys —
  and a quorum of its own roots, and it is valid now (:meth:`TrustList.open`, strict;
  ``TRUST_QUORUM_MISSING`` when short). Each list taken judges the next, so adding a member or
  rotating a root key needs a quorum of the roots as they were (as in TUF's root rotation);
* its serial is not lower than the highest serial it has seen (``TRUST_LIST_ROLLBACK``: an old
  list re-published, e.g. one from before a key was revoked) — the highest serial can be kept
  in a file so that a restart does not forget it;
* it is not a second, different list under the serial of the current one
  (``TRUST_LIST_CONFLICT``).

A verifier that missed lists (it was stopped, or starts from the genesis list long after) may
hold roots the newest list no longer carries a quorum of. Given a ``history`` source (the trust
topic keeps every list under its serial's key), the tracker then follows the chain: each list
between the one it holds and the newest, in serial order, judged by the roots of the one before
at its own issue time (an old list's expiry does not matter: TUF's rule for root rotation), and
judges the newest by the last of them (:meth:`TrustAnchor.follow`).

:meth:`TrustTracker.verifier` is asked for at every verification and checks expiry each time,
so a list that expires while the process runs stops being used at once. A refused list leaves
the current one in force. Pure apart from the optional serial file; the refresh loop
(:func:`follow`) takes any async fetch function, so Kafka stays at the edge.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path

from puente.codec.registry import Registry
from puente.evidence._time import now_ms
from puente.evidence.errors import MalformedError, TrustListError
from puente.evidence.keys import PublicKey
from puente.evidence.keystore import GENESIS_FILE, KeyStore
from puente.evidence.note import Note
from puente.evidence.trust import ROOT_HOLDER, TRUST_LIST_HEADER, TrustAnchor, TrustList
from puente.evidence.verify import Verifier
from puente.logs import get_logger

log = get_logger("evidence.trust")

Fetch = Callable[[], Awaitable[bytes | None]]
"""Returns the newest signed trust list a source holds, or None."""
History = Callable[[], Awaitable[Sequence[bytes]]]
"""Returns every signed trust list a source keeps (any order): the chain to the newest."""
_CHAIN_MAY_HELP = frozenset(
    {"TRUST_QUORUM_MISSING", "TRUST_LIST_UNTRUSTED", "TRUST_ANCHOR_UNRESOLVED"}
)


class TrustTracker:
    """The current trust list of one verifier, and the highest serial it has seen."""

    def __init__(
        self,
        anchors: TrustAnchor | Sequence[PublicKey],
        registry: Registry,
        *,
        serial_file: Path | None = None,
        clock: Callable[[], int] = now_ms,
        history: History | None = None,
    ) -> None:
        """``history``: where the lists between the one held and a newer one are found when
        the newer one is not judged acceptable by the roots held (the trust topic)."""
        anchor = anchors if isinstance(anchors, TrustAnchor) else TrustAnchor.from_keys(anchors)
        if not anchor.roots and anchor.pin is None:
            raise TrustListError(
                "no trust anchor: a trust list can only be verified against the genesis trust "
                "list (or a single-root deployment's operator root keys), held out of band",
                reason="TRUST_ANCHOR_MISSING",
            )
        self.anchor = anchor
        """What judges the next list: the trust anchor, then the roots of the list in force."""
        self.registry = registry
        self.serial_file = serial_file
        self.clock = clock
        self.history = history
        self._refused_through_history: bytes | None = None
        self._data: bytes | None = None
        self._list: TrustList | None = None
        self._verifier: Verifier | None = None
        self.highest_serial = max(_read_serial(serial_file), anchor.serial)

    @classmethod
    def with_list(
        cls, data: bytes, anchors: TrustAnchor | Sequence[PublicKey], registry: Registry
    ) -> TrustTracker:
        """A tracker starting from the signed list ``data`` (raises if it is not acceptable)."""
        tracker = cls(anchors, registry)
        tracker.offer(data)
        return tracker

    @property
    def current(self) -> TrustList | None:
        """The list in force (it may have expired since; :meth:`verifier` checks)."""
        return self._list

    @property
    def current_bytes(self) -> bytes | None:
        """The signed bytes of the list in force, as published."""
        return self._data

    def offer(self, data: bytes, *, through: Iterable[bytes] = ()) -> bool:
        """Take ``data`` as the current list if it is acceptable; True if it changed.

        ``through``: lists that may lie between the one held and ``data``; those with a serial
        between theirs are followed in serial order (each judged by the one before) and
        ``data`` is judged by the last one taken. An anchor pinned by digest is first found
        among them (or is ``data`` itself).

        Raises :class:`TrustListError` (the current list stays in force) with the reason of
        :meth:`TrustList.open` (``TRUST_QUORUM_MISSING``, ...), or ``TRUST_LIST_ROLLBACK`` /
        ``TRUST_LIST_CONFLICT``.
        """
        if data == self._data:
            return False
        anchor = self.anchor
        if anchor.pin is not None:  # given as the genesis list's digest: find it first
            anchor = anchor.resolve([*through, data])
        serial = _unverified_serial(data)
        if serial is not None:
            anchor = anchor.follow(d for d in through if (_unverified_serial(d) or 0) < serial)
        tl = TrustList.open(data, anchor, now=self.clock())
        if tl.serial < self.highest_serial:
            raise TrustListError(
                f"trust list serial {tl.serial} is lower than serial {self.highest_serial} "
                "already seen: an older list was re-published (refused)",
                reason="TRUST_LIST_ROLLBACK",
            )
        if self._list is not None and tl.serial == self._list.serial:
            raise TrustListError(
                f"a second, different trust list under serial {tl.serial} (refused; the first "
                "stays in force)",
                reason="TRUST_LIST_CONFLICT",
            )
        self._data, self._list = data, tl
        self._verifier = Verifier(trust_list=tl, registry=self.registry)
        if tl.quorum is not None:  # a single-root list leaves the operator's keys in charge
            self.anchor = TrustAnchor.of(tl)
        if tl.serial > self.highest_serial:
            self.highest_serial = tl.serial
            _write_serial(self.serial_file, tl.serial)
        log.info(
            "trust_list.current",
            serial=tl.serial,
            keys=len(tl.entries),
            signed_by=len(tl.signed_by),
            quorum=tl.quorum,
        )
        return True

    def verifier(self) -> Verifier:
        """A verifier over the current list, checked unexpired now.

        Raises :class:`TrustListError`: ``TRUST_LIST_MISSING`` (none yet) or
        ``TRUST_LIST_EXPIRED`` (refresh it: nothing verifies against an expired list).
        """
        if self._list is None or self._verifier is None:
            raise TrustListError(
                "no valid trust list yet: nothing can be verified", reason="TRUST_LIST_MISSING"
            )
        if self.clock() >= self._list.expires_at:
            raise TrustListError(
                f"trust list serial {self._list.serial} has expired; waiting for a newer one",
                reason="TRUST_LIST_EXPIRED",
            )
        return self._verifier

    async def refresh(self, fetches: Sequence[Fetch]) -> bool:
        """Offer the newest list of the first source that has one; True if it changed.

        A source that fails or holds nothing passes to the next; a refused list is logged
        (with its reason code) and the current one stays.
        """
        for fetch in fetches:
            try:
                data = await fetch()
            except Exception as exc:  # a source down is a source skipped, never a crash
                log.warning("trust_list.source_failed", error=type(exc).__name__)
                continue
            if data is None:
                continue
            try:
                return self.offer(data)
            except TrustListError as exc:
                chain_may_help = exc.reason in _CHAIN_MAY_HELP and self.history is not None
                if chain_may_help and data != self._refused_through_history:
                    return await self._offer_through_history(data)
                log.warning("trust_list.refused", reason=exc.reason, error=exc.message)
                return False
        return False

    async def _offer_through_history(self, data: bytes) -> bool:
        """Offer ``data`` again through the lists the history source keeps."""
        assert self.history is not None
        try:
            lists = await self.history()
        except Exception as exc:  # the source down: the list stays refused until next time
            log.warning("trust_list.history_failed", error=type(exc).__name__)
            return False
        try:
            changed = self.offer(data, through=lists)
        except TrustListError as exc:
            # The same list offered again is refused without reading the history again (a
            # list that completes the chain is published as the newest, so it differs).
            self._refused_through_history = data
            log.warning("trust_list.refused", reason=exc.reason, error=exc.message)
            return False
        log.info("trust_list.chain_followed", serial=self.highest_serial, lists=len(lists))
        return changed


async def follow(
    tracker: TrustTracker, fetches: Sequence[Fetch], *, interval_s: float, stop: asyncio.Event
) -> None:
    """Refresh ``tracker`` every ``interval_s`` until ``stop`` is set: a revoked key or a new
    list is in force at most one interval after it is published."""
    while not stop.is_set():
        await tracker.refresh(fetches)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


def file_fetch(path: Path) -> Fetch:
    """A source reading a signed trust list from a file (None while the file is missing)."""

    def read() -> bytes | None:
        return path.read_bytes() if path.is_file() else None

    async def fetch() -> bytes | None:
        return await asyncio.to_thread(read)

    return fetch


def read_anchors(path: Path) -> list[PublicKey]:
    """Verifier keys, one per line (``#`` comments and blank lines allowed)."""
    lines = path.read_text(encoding="ascii").splitlines()
    return [PublicKey.from_vkey(x.strip()) for x in lines if x.strip() and not x.startswith("#")]


def local_anchor(keys_dir: Path) -> TrustAnchor | None:
    """The embedded default's trust anchor: the genesis list kept beside the keys
    (``trust-genesis.note``), else (a single-root deployment) the key store's operator root
    keys, else None."""
    genesis = keys_dir / GENESIS_FILE
    if genesis.is_file():
        return TrustAnchor.genesis(genesis.read_bytes())
    if not keys_dir.is_dir():
        return None
    store = KeyStore(keys_dir)
    keys = [store.public(m) for m in store.key_metas() if m.holder == ROOT_HOLDER]
    return TrustAnchor.from_keys(keys) if keys else None


def read_anchor(specs: Sequence[str]) -> TrustAnchor:
    """The trust anchor given on a command line or in settings: a genesis trust list (a file
    holding the signed note, or ``sha256:<hex>`` of it: the list is then read from the trust
    topic), or a single-root deployment's operator root verifier keys (vkeys inline, or files
    of them, one per line). :class:`TrustListError` if a genesis list does not
    carry a quorum of its own roots, or if both kinds are given."""
    keys: list[PublicKey] = []
    genesis: list[TrustAnchor] = []
    for spec in specs:
        path = Path(spec)
        if spec.startswith(PIN_PREFIX):
            genesis.append(TrustAnchor.pinned(_pin_digest(spec)))
        elif path.is_file() and path.read_bytes().startswith(TRUST_LIST_HEADER.encode() + b"\n"):
            genesis.append(TrustAnchor.genesis(path.read_bytes()))
        else:
            keys.extend(read_anchors(path) if path.is_file() else [PublicKey.from_vkey(spec)])
    if (genesis and keys) or len(genesis) > 1:
        raise TrustListError(
            "give one trust anchor: a genesis trust list, or operator root verifier keys",
            reason="TRUST_ANCHOR_INVALID",
        )
    return genesis[0] if genesis else TrustAnchor.from_keys(keys)


PIN_PREFIX = "sha256:"
"""An anchor given as ``sha256:<64 hex>``: the SHA-256 of the genesis list's bytes."""


def _pin_digest(spec: str) -> bytes:
    text = spec[len(PIN_PREFIX) :].strip().lower()
    try:
        digest = bytes.fromhex(text)
    except ValueError:
        digest = b""
    if len(digest) != 32:
        raise TrustListError(
            f"{spec!r}: a pinned genesis list is sha256: and 64 hex digits (sha256sum of "
            "trust-genesis.note)",
            reason="TRUST_ANCHOR_INVALID",
        )
    return digest


def _read_serial(path: Path | None) -> int:
    if path is None or not path.is_file():
        return 0
    text = path.read_text(encoding="ascii").strip()
    return int(text) if text.isdigit() else 0


def _write_serial(path: Path | None, serial: int) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{serial}\n", encoding="ascii")
    tmp.replace(path)


def _unverified_serial(data: bytes) -> int | None:
    """The serial ``data`` claims (unverified), None if it does not parse as a list."""
    try:
        return TrustList.from_text(Note.parse(data).text).serial
    except (MalformedError, UnicodeDecodeError, ValueError):
        return None

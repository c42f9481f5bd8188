"""Whose edge this gateway is: the member states it serves, and the keys it opens their
deliveries with.

In the federation every member state runs its own gateway, the front door of its agencies. What
an agency publishes is sealed here to its own state's node (:mod:`puente_gateway.notices`), so
nothing it sends is in clear on Kafka; what its state receives was sealed by the sending node to
the state's member encryption key, and is opened here with that key
(:mod:`puente_gateway.feeds`). So the gateway of state CC holds ``member:CC``'s encryption keys
(private parts 0600 in its key store, ``keys_dir``) and serves CC's agencies only: ``states``
names the states it serves, and a caller of any other state is refused
(``403 STATE_NOT_SERVED``, :class:`puente_gateway.auth.Authenticator`) before its request is
looked at. On the embedded default one gateway
serves every member state from the one key store of ``<state>/keys``.

Keys rotate while the gateway runs: a state's key ring is asked of the key store again every
``keys_reload_s`` (which parses its files again only when they changed), and it keeps every key
whose private part is still in the store, so what was sealed to a rotated key still opens. (A
node's own key ring, :class:`puente.service.nodekeys.StoreKeys`, is re-read the same way; this
one is ``member:CC``'s, the recipient's side.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from puente.config import GatewaySettings, Settings
from puente.errors import ConfigError, PuenteError
from puente.evidence.enckeys import KeyRing
from puente.evidence.keystore import KeyStore
from puente.evidence.trust import member_holder
from puente.logs import get_logger

log = get_logger("gateway.edge")


def served_states(gw: GatewaySettings, members: Iterable[str]) -> tuple[str, ...]:
    """The states ``gw`` makes a gateway the edge of: ``states``, else every member state (the
    embedded default). Raises ConfigError for a state that is not a member."""
    members = tuple(members)
    unknown = [s for s in gw.states if s not in members]
    if unknown:
        raise ConfigError(
            f"PUENTE_GATEWAY__STATES names {', '.join(unknown)}, not member states",
            hint=f"member states: {', '.join(members)}",
        )
    return tuple(gw.states) or members


class Edge:
    """The states a gateway serves and their member key rings (re-read every ``reload_s``)."""

    def __init__(
        self,
        states: Iterable[str],
        store: KeyStore,
        *,
        reload_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.states = frozenset(states)
        self.store = store
        self.reload_s = reload_s
        self.clock = clock
        self._rings: dict[str, tuple[float, KeyRing]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, gw: GatewaySettings, members: Iterable[str]) -> Edge:
        """The edge ``gw`` configures. Raises ConfigError for a state that is not a member, or
        (when ``states`` is set, as in production) one whose encryption keys the key store
        does not hold: such a gateway could open none of that state's deliveries."""
        store = KeyStore(gw.keys_dir or settings.keys_dir)
        edge = cls(served_states(gw, members), store, reload_s=gw.keys_reload_s)
        for state in gw.states:
            if not edge.keyring(state).keys:
                raise ConfigError(
                    f"this gateway serves {state}, but its key store {store.root} holds no "
                    f"private encryption key of {member_holder(state)}: it could open none of "
                    f"{state}'s deliveries",
                    hint=f"put {state}'s member encryption keys (made on {state}'s side: "
                    f"`puente keys generate --for {state} --usage encryption`) in "
                    "PUENTE_GATEWAY__KEYS_DIR",
                )
        return edge

    def keyring(self, state: str) -> KeyRing:
        """Every encryption key of ``member:<state>`` this gateway holds (current, rotated and
        revoked alike; empty when it holds none). A key store that cannot be read leaves the
        last ring read in force (and is logged)."""
        now = self.clock()
        cached = self._rings.get(state)
        if cached is not None and now - cached[0] < self.reload_s:
            return cached[1]
        try:
            ring = self.store.keyring(member_holder(state))
        except (PuenteError, OSError) as exc:
            log.warning("key store unreadable", state=state, error=type(exc).__name__)
            ring = cached[1] if cached is not None else KeyRing(member_holder(state), ())
        self._rings[state] = (now, ring)
        return ring

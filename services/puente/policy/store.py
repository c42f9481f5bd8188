"""Holding the active policy set in a running process, and replacing it safely.

The policy service calls :meth:`PolicyStore.reload` at a batch boundary; a set that fails to load
never replaces the working one. The store reports the outcome (:class:`ReloadResult`) so the
caller can log it and count it in metrics, and keeps the last error for health endpoints.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from puente.errors import PuenteError
from puente.policy.engine import Decision, PolicySet
from puente.policy.errors import PolicyError
from puente.policy.loader import current_version, load_policy_set
from puente.policy.transforms import PseudonymKeys


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload did: ``changed`` when a new version became active; ``error`` when the
    candidate was refused (the previous set, ``version``, stays active)."""

    version: str | None
    changed: bool
    error: PuenteError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class PolicyStore:
    """The active :class:`PolicySet` of a process, with the pseudonymisation secret.

    ``PolicyStore(policies_dir, schemas_dir, secret=...)`` loads nothing until :meth:`reload`
    (so a service can start, report and retry). Decisions go through :meth:`decide` /
    :meth:`decide_all` or through :attr:`current` for a batch that must use one version only.
    """

    def __init__(
        self, policies_dir: Path, schemas_dir: Path | None = None, *, secret: bytes
    ) -> None:
        self.policies_dir = policies_dir
        self.schemas_dir = schemas_dir
        self.keys = PseudonymKeys(secret)
        self._current: PolicySet | None = None
        self._last_error: PuenteError | None = None
        self._lock = threading.Lock()

    @property
    def current(self) -> PolicySet:
        """The active set; :class:`PolicyError` if none was ever loaded."""
        ps = self._current
        if ps is None:
            raise PolicyError(
                "no policy set is loaded", reason="POLICY_NOT_LOADED", hint="call reload() first"
            )
        return ps

    @property
    def last_error(self) -> PuenteError | None:
        """The error of the most recent refused reload (cleared by a successful one)."""
        return self._last_error

    def reload(self, accept: Callable[[PolicySet], None] | None = None) -> ReloadResult:
        """Load the directory again; activate it only if it is valid, differs, and ``accept``
        (if given) does not raise a :class:`PuenteError` for it (a node refuses a set whose
        regional floor is not the one the trust list pins)."""
        with self._lock:
            old = self._current
            try:
                if old is not None and current_version(self.policies_dir) == old.version:
                    return ReloadResult(old.version, False)  # unchanged: no parse, no compile
                candidate = load_policy_set(self.policies_dir, self.schemas_dir)
                if accept is not None and (old is None or old.version != candidate.version):
                    accept(candidate)
            except PuenteError as exc:
                self._last_error = exc
                return ReloadResult(old.version if old else None, False, exc)
            except Exception as exc:  # unreadable directory, broken schema JSON,
                # or anything else: the running set stays, the service never stops over a file.
                err = PolicyError(
                    f"policy set could not be read: {type(exc).__name__}: {exc}",
                    reason="POLICY_UNREADABLE",
                )
                self._last_error = err
                return ReloadResult(old.version if old else None, False, err)
            self._last_error = None
            if old is not None and old.version == candidate.version:
                return ReloadResult(old.version, False)
            self._current = candidate
            return ReloadResult(candidate.version, True)

    def decide(self, notice: Mapping[str, Any], notice_type: str, recipient: str) -> Decision:
        """One recipient's decision under the active set."""
        return self.current.decide(notice, notice_type, recipient, self.keys)

    def decide_all(self, notice: Mapping[str, Any], notice_type: str) -> list[Decision]:
        """Every member's decision under the active set (the service's hot path)."""
        return self.current.decide_all(notice, notice_type, self.keys)

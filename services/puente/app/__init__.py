"""The composition root: what every command and service needs, built once from the settings
(:class:`~puente.app.runtime.Runtime`), the ``puente`` command that mounts every area's
commands (:mod:`.cli`), the operator's set-up (:mod:`.operator`) and the demo (:mod:`.demo`).

Nothing imports this package; it imports everything (docs/architecture.md shows the layers,
and ``lint-imports`` in ``make test`` enforces them).
"""

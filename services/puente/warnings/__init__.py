"""Early warning (issue 19, docs/early-warning.md): triggers as data, aggregates without
identity, and the deterministic evaluator every member can re-run.

* :mod:`~puente.warnings.loader` reads and checks policies/triggers.yaml and policies/places.yaml;
* :mod:`~puente.warnings.tables` says what an origin counts and in which cells a notice counts;
* :mod:`~puente.warnings.aggregate` counts an origin's accepted notices per window and closes
  windows; :mod:`~puente.warnings.privacy` suppresses what could single a person out;
* :mod:`~puente.warnings.signing` signs and verifies aggregates and warnings;
* :mod:`~puente.warnings.evaluator` turns verified aggregates into EarlyWarning records;
* :mod:`~puente.warnings.simulate` runs it all over synthetic days; :mod:`~puente.warnings.service`
  is the Kafka edge (``puente serve warnings``).

Everything but the service and the CLI is pure.
"""

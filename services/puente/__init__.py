"""Puente: a multilateral data-exchange broker for law-enforcement and consular notices.

The package is a pure core (codec, policy engine, evidence) with thin edges (Kafka, HTTP, files).
"""

__version__ = "0.1.0"

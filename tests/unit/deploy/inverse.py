"""Readings of the rendered deployment back into Puente's terms, for the tests to compare with
the plan (test support: the deployment itself never needs them)."""

from __future__ import annotations

from typing import Any

from puente.deploy import contract as c
from puente.deploy.k8s import OPERATIONS, PATTERN_TYPES, RESOURCE_TYPES
from puente.deploy.material import NODES_DIR
from puente.kafka.broker_config import ADMIN_USER
from puente.kafka.plan import Acl


def plan_acls(principal: str, rules: list[dict[str, Any]]) -> set[Acl]:
    """The inverse of :func:`puente.deploy.k8s.strimzi_acls`."""
    resource = {v: k for k, v in RESOURCE_TYPES.items()}
    pattern = {v: k for k, v in PATTERN_TYPES.items()}
    operation = {v: k for k, v in OPERATIONS.items()}
    return {
        Acl(
            principal,
            resource[r["resource"]["type"]],
            r["resource"]["name"],
            pattern[r["resource"]["patternType"]],
            operation[op],
        )
        for r in rules
        for op in r["operations"]
    }


def secret_file_names(inputs: c.DeployInputs) -> list[str]:
    """Every file the Compose file mounts as a Compose secret from deploy/compose/secrets/ (the
    key stores and the public trust material are folders, bind-mounted)."""
    return [
        c.BROKER_SECRET_FILE,
        f"{ADMIN_USER}.json",
        *(f"{p.name}.json" for p in inputs.plan.principals),
        *(f"{NODES_DIR}/{m}/{c.NODE_PSEUDONYM_FILE}" for m in inputs.members),
        c.GATEWAY_TLS_CERT,
        c.GATEWAY_TLS_KEY,
    ]

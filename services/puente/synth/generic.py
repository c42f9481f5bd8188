"""Schema-driven random records, for record types the generator has no hand-made builder for
(internal records later issues add: delivery envelopes, audit records, rejections). Values are
random but valid, so every schema in the registry can be sampled, encoded and cross-checked."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable
from typing import Any

from puente.codec._schema import EPOCH, Names, Node, kind, logical


def random_record(rng: random.Random, parsed: dict[str, Any]) -> dict[str, Any]:
    """A random record of a fastavro-parsed record schema."""
    out = _value(rng, parsed, Names(), 0)
    assert isinstance(out, dict)
    return out


def _value(rng: random.Random, node: Node, names: Names, depth: int) -> Any:
    node = names.resolve(node)
    k = kind(node)
    lt = logical(node)
    if lt == "uuid":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if lt == "date":
        return dt.date(2025, 1, 1) + dt.timedelta(days=rng.randint(-9000, 700))
    if lt in {"timestamp-millis", "timestamp-micros"}:
        ms = rng.randint(1_735_689_600_000, 1_767_225_600_000)
        return EPOCH + dt.timedelta(milliseconds=ms)
    if k == "union":
        branches = list(node)
        if depth > 4 and "null" in branches:
            return None
        return _value(rng, rng.choice(branches), names, depth + 1)
    if k == "record":
        return {f["name"]: _value(rng, f["type"], names, depth + 1) for f in node["fields"]}
    if k == "array":
        count = 0 if depth > 4 else rng.randint(0, 3)
        return [_value(rng, node["items"], names, depth + 1) for _ in range(count)]
    if k == "map":
        count = 0 if depth > 4 else rng.randint(0, 3)
        return {f"k{i}": _value(rng, node["values"], names, depth + 1) for i in range(count)}
    if k == "enum":
        return rng.choice(node["symbols"])
    if k == "fixed":
        return rng.randbytes(int(node["size"]))
    primitives: dict[str, Callable[[], Any]] = {
        "null": lambda: None,
        "boolean": lambda: rng.random() < 0.5,
        "int": lambda: rng.randint(-(2**31), 2**31 - 1),
        "long": lambda: rng.randint(-(2**63), 2**63 - 1),
        "float": lambda: float(rng.randint(-1000, 1000)) / 4,
        "double": lambda: rng.uniform(-1e6, 1e6),
        "bytes": lambda: rng.randbytes(rng.randint(0, 40)),
        "string": lambda: "".join(rng.choice("abcdefghijklmnñopqrstuvwxyzé ") for _ in range(12)),
    }
    return primitives[k]()

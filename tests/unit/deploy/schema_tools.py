"""Offline schema checks for deploy/: Compose specification, Kubernetes, Strimzi.

- Compose: the compose-spec JSON schema vendored in ``schemas/compose-spec.json`` (see
  ``schemas/SOURCES.md``), with jsonschema.
- Kubernetes built-in kinds: the OpenAPI-derived JSON schemas bundled by the PyPI package
  ``kubernetes-validate`` (strict mode: unknown fields are errors).
- Strimzi custom resources: Strimzi's CRD schemas as compiled by the npm package
  ``@kubernetes-models/strimzi-kafka-operator`` (ajv validators for types, enums, required fields
  and patterns; TypeScript types for unknown fields, checked with ``tsc``'s excess-property
  check, since CRD schemas themselves allow unknown fields and Kubernetes would silently prune
  them). The npm packages are installed once, from ``strimzi/package-lock.json``, into the cache
  directory (like the Kafka jars) and reused offline afterwards.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema

from puente.config import Settings

HERE = Path(__file__).resolve().parent
COMPOSE_SCHEMA = HERE / "schemas" / "compose-spec.json"
STRIMZI_SRC = HERE / "strimzi"
K8S_VERSION = "1.33.0"
STRIMZI_TYPES = {
    "Kafka": "IKafka",
    "KafkaNodePool": "IKafkaNodePool",
    "KafkaTopic": "IKafkaTopic",
    "KafkaUser": "IKafkaUser",
}


def compose_errors(doc: dict[str, Any]) -> list[str]:
    """Every violation of the Compose specification's schema (empty when valid)."""
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def k8s_errors(doc: dict[str, Any], version: str = K8S_VERSION) -> list[str]:
    """Violations of the Kubernetes schema of ``doc``'s kind, strict about unknown fields."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(map(str, exc.path))
        return [f"{doc['kind']} {doc['metadata'].get('name')}: {where}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [
            f"no Kubernetes {version} schema for {doc.get('apiVersion')} {doc.get('kind')}: {exc}"
        ]
    return []


def _tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise RuntimeError(
            f"`{name}` is not on PATH: the Strimzi schema check needs Node.js and npm "
            "(Debian: apt-get install nodejs npm)"
        )
    return exe


def strimzi_tools() -> Path:
    """The installed checker (node_modules) in the cache directory, installing it if needed."""
    lock = (STRIMZI_SRC / "package-lock.json").read_bytes()
    digest = hashlib.sha256(lock + (STRIMZI_SRC / "validate.mjs").read_bytes()).hexdigest()[:12]
    target = Settings().cache_dir / f"strimzi-schemas-{digest}"
    stamp = target / ".installed"
    if stamp.is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json", "validate.mjs"):
        shutil.copyfile(STRIMZI_SRC / name, target / name)
    proc = subprocess.run(
        [_tool("npm"), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=target,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"npm ci of the Strimzi schema checker failed: {proc.stderr[-500:]}")
    stamp.write_text("ok\n")
    return target


def strimzi_errors(docs: list[dict[str, Any]]) -> list[str]:
    """Violations of Strimzi's CRD schemas by each document (ajv; empty when all are valid)."""
    tools = strimzi_tools()
    proc = subprocess.run(
        [_tool("node"), str(tools / "validate.mjs")],
        input=json.dumps(docs),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tools,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"validate.mjs failed: {proc.stderr[-1000:]}")
    return [
        f"{r['kind']} {r['name']}: {e.get('instancePath', '')} {e.get('keyword', '')} "
        f"{e.get('message', '')} "
        f"{json.dumps(e.get('params', {}))}"
        for r in json.loads(proc.stdout)
        for e in r["errors"]
    ]


def strimzi_unknown_fields(docs: list[dict[str, Any]], workdir: Path) -> list[str]:
    """Fields the Strimzi types do not know (tsc excess-property errors; empty when none)."""
    tools = strimzi_tools()
    lines = []
    kinds = sorted({d["kind"] for d in docs})
    for kind in kinds:
        lines.append(
            f"import type {{ {STRIMZI_TYPES[kind]} }} from "
            f'"@kubernetes-models/strimzi-kafka-operator/kafka.strimzi.io/v1/{kind}";'
        )
    for i, d in enumerate(docs):
        lines.append(f"export const d{i}: {STRIMZI_TYPES[d['kind']]} = {json.dumps(d)};")
    workdir.mkdir(parents=True, exist_ok=True)
    check = workdir / "check.ts"
    check.write_text("\n".join(lines) + "\n")
    config = {
        "compilerOptions": {
            "strict": True,
            "noEmit": True,
            "module": "nodenext",
            "moduleResolution": "nodenext",
            "target": "es2022",
            "skipLibCheck": True,
            "typeRoots": [],
        },
        "files": [str(check)],
    }
    (workdir / "tsconfig.json").write_text(json.dumps(config))
    # Resolve the packages from the installed checker: link its node_modules beside check.ts.
    link = workdir / "node_modules"
    if not link.exists():
        link.symlink_to(tools / "node_modules", target_is_directory=True)
    proc = subprocess.run(
        [
            _tool("node"),
            str(tools / "node_modules" / "typescript" / "bin" / "tsc"),
            "-p",
            str(workdir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return [line for line in proc.stdout.splitlines() if "error TS" in line]

"""Cross-implementation proof: Apache Avro's Java library decodes Puente's single-object bytes
(finding each writer schema by fingerprint in its SchemaStore) to the same values, and what Java
encodes Puente decodes back to the original record."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pytest

from puente.codec.registry import Registry
from puente.codec.wire import decode, encode
from puente.config import Settings
from puente.maven import classpath, fetch_jars
from puente.resources import project_root
from puente.synth import SCENARIOS, Generator

ROOT = project_root() or Path.cwd()
AVRO_JAVA = "org.apache.avro:avro:1.12.2"
PER_SCHEMA = 6


@pytest.fixture(scope="module")
def java_libs() -> Path:
    if shutil.which("java") is None:
        pytest.fail("Java 17 is a prerequisite (README); it is not on PATH")
    return fetch_jars("avro-1.12.2", [AVRO_JAVA], Settings().cache_dir)


def avro_json(sv: Any, record: dict[str, Any]) -> Any:
    """The record in Avro's JSON encoding (unions wrapped), as fastavro writes it."""
    out = io.StringIO()
    fastavro.json_writer(out, sv.parsed, [record])
    return orjson.loads(out.getvalue())


def test_java_decodes_puente_bytes_and_puente_decodes_java_bytes(java_libs: Path) -> None:
    reg = Registry.load(ROOT / "schemas")
    gen = Generator(31)
    cases = [
        (n, gen.sample(n, reg.latest(n).parsed)) for n in reg.names() for _ in range(PER_SCHEMA)
    ]
    cases += [(n.name, n.record) for n in map(gen.scenario, SCENARIOS)]
    encoded = [encode(reg, name, record) for name, record in cases]
    schema_files = [str(sv.path) for sv in reg]
    proc = subprocess.run(
        [
            "java",
            "-cp",
            classpath(java_libs),
            str(Path(__file__).with_name("Decode.java")),
            *schema_files,
        ],
        input="\n".join(data.hex() for data in encoded) + "\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Not splitlines(): bytes in Avro JSON are code points such as U+0085, a "line break" to it.
    lines = proc.stdout.rstrip("\n").split("\n")
    assert len(lines) == len(cases)
    names_seen = set()
    for (name, record), data, line in zip(cases, encoded, lines, strict=True):
        java_json, java_hex = line.split("\t")
        sv = reg.latest(name)
        assert orjson.loads(java_json) == avro_json(sv, record), name
        java_bytes = bytes.fromhex(java_hex)
        assert java_bytes == data, name
        assert decode(reg, java_bytes, name) == record
        names_seen.add(name)
    assert names_seen == set(reg.names())

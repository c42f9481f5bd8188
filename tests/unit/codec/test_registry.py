from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form

from puente.codec.errors import SchemaError
from puente.codec.registry import Registry, default_registry

from .conftest import SCHEMAS

SMALL = {
    "type": "record",
    "name": "Widget",
    "namespace": "puente",
    "doc": "test",
    "fields": [{"name": "id", "type": "string", "doc": "id"}],
}


def write(root: Path, rel: str, content: object) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_loads_every_shipped_schema(reg: Registry) -> None:
    names = reg.names()
    for name in ("puente.CaseNotice", "puente.ConsularNotification", "puente.DeliveryReceipt"):
        assert name in names
    assert len(reg) == len(list(SCHEMAS.glob("*/v*.avsc")))


def test_fingerprint_is_crc64_avro_of_canonical_form(reg: Registry) -> None:
    for sv in reg:
        pcf = to_parsing_canonical_form(dict(sv.schema))
        assert sv.canonical_form == pcf
        assert sv.fingerprint_bytes == bytes.fromhex(fingerprint(pcf, "CRC-64-AVRO"))
        assert sv.fingerprint == int.from_bytes(sv.fingerprint_bytes, "little")
        assert reg.by_fingerprint(sv.fingerprint) is sv
        assert reg.by_fingerprint(sv.fingerprint_bytes) is sv


def test_crc64_avro_matches_the_specification_vector() -> None:
    # Avro's own test vector (share/test/data/schema-tests.txt): "null" -> 7195948357588979594.
    from puente.codec.fingerprint import crc64_avro

    assert crc64_avro('"null"') == 7195948357588979594


def test_lookups(reg: Registry) -> None:
    sv = reg.latest("puente.CaseNotice")
    assert reg.latest("CaseNotice") is sv
    assert sv.name == "CaseNotice" and sv.version == 2 and sv.path.name == "v2.avsc"
    assert reg.get("puente.CaseNotice", 2) is sv
    v1 = reg.get("puente.CaseNotice", 1)
    assert v1.path.name == "v1.avsc" and reg.versions("puente.CaseNotice") == (v1, sv)
    assert reg.by_fingerprint(12345) is None
    with pytest.raises(SchemaError) as err:
        reg.latest("puente.Nope")
    assert err.value.reason == "SCHEMA_NOT_FOUND"
    with pytest.raises(SchemaError):
        reg.get("puente.CaseNotice", 9)


def test_keeps_every_version_and_latest_is_highest(tmp_path: Path) -> None:
    v2 = dict(SMALL, fields=[*SMALL["fields"], {"name": "n", "type": "int", "default": 0}])
    write(tmp_path, "Widget/v1.avsc", SMALL)
    write(tmp_path, "Widget/v2.avsc", v2)
    write(tmp_path, "README.md", "not a schema")
    reg = Registry.load(tmp_path)
    assert [v.version for v in reg.versions("puente.Widget")] == [1, 2]
    assert reg.latest("puente.Widget").version == 2


@pytest.mark.parametrize(
    ("rel", "content", "reason", "words"),
    [
        ("Widget/v1.avsc", "{not json", "SCHEMA_INVALID", "line 1"),
        ("Widget/v1.avsc", {"type": "string"}, "SCHEMA_INVALID", "must be a record"),
        (
            "Widget/v1.avsc",
            dict(SMALL, fields=[{"name": "x", "type": "nope"}]),
            "SCHEMA_INVALID",
            "invalid Avro",
        ),
        ("Gadget/v1.avsc", SMALL, "SCHEMA_LAYOUT", "belongs in"),
        ("Widget/v01.avsc", SMALL, "SCHEMA_LAYOUT", "v<N>.avsc"),
        ("Widget/latest.avsc", SMALL, "SCHEMA_LAYOUT", "v<N>.avsc"),
        ("v1.avsc", SMALL, "SCHEMA_LAYOUT", "v<N>.avsc"),
    ],
)
def test_malformed_files_are_reported_with_their_path(
    tmp_path: Path, rel: str, content: object, reason: str, words: str
) -> None:
    path = write(tmp_path, rel, content)
    with pytest.raises(SchemaError) as err:
        Registry.load(tmp_path)
    assert err.value.reason == reason
    assert err.value.path == path
    assert str(path) in str(err.value) and words in str(err.value)


def test_duplicate_schema_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "Widget/v1.avsc", SMALL)
    dup = write(tmp_path, "Widget/v2.avsc", dict(SMALL, doc="only the doc differs"))
    with pytest.raises(SchemaError) as err:
        Registry.load(tmp_path)
    assert err.value.reason == "SCHEMA_DUPLICATE" and err.value.path == dup


def test_recursive_schema_is_refused(tmp_path: Path) -> None:
    node = {
        "type": "record",
        "name": "Node",
        "fields": [{"name": "next", "type": ["null", "Node"], "default": None}],
    }
    write(tmp_path, "Node/v1.avsc", node)
    with pytest.raises(SchemaError, match="recursive"):
        Registry.load(tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(SchemaError) as err:
        Registry.load(tmp_path / "absent")
    assert err.value.reason == "SCHEMA_LAYOUT"


def test_new_record_types_are_picked_up(tmp_path: Path) -> None:
    shutil.copytree(SCHEMAS, tmp_path, dirs_exist_ok=True)
    write(tmp_path, "Rejection/v1.avsc", dict(SMALL, name="Rejection"))
    assert "puente.Rejection" in Registry.load(tmp_path).names()


def test_default_registry_uses_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from puente import config

    write(tmp_path, "Widget/v1.avsc", SMALL)
    monkeypatch.setenv("PUENTE_SCHEMAS_DIR", str(tmp_path))
    config.get_settings.cache_clear()
    default_registry.cache_clear()
    try:
        reg = default_registry()
        assert reg.names() == ["puente.Widget"] and default_registry() is reg
    finally:
        config.get_settings.cache_clear()
        default_registry.cache_clear()


def test_every_field_is_documented(reg: Registry) -> None:
    from puente.codec.compat import undocumented

    for sv in reg:
        if sv.name in {"CaseNotice", "ConsularNotification", "DeliveryReceipt"}:
            assert undocumented(sv.schema) == [], sv.path

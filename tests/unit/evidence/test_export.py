"""The export file: the documented frame layout, round trips, filtering by topic kind, and
files cut short."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from puente.errors import PuenteError
from puente.evidence.audit import source as source_module
from puente.evidence.audit.source import (
    MAGIC,
    ExportError,
    ExportFile,
    ExportWriter,
    RecordBatch,
    export,
    open_source,
    register_source,
)
from puente.topics import AUDIT, CHECKPOINTS, TRUST, Naming


def batch(topic: str, partition: int, n: int, start: int = 0) -> RecordBatch:
    return RecordBatch(
        topic,
        partition,
        list(range(start, start + n)),
        [1000 + i for i in range(n)],
        [None if i % 2 else b"k%d" % i for i in range(n)],
        [b"" if i == 3 else b"value %d" % i for i in range(n)],
    )


def write(path: Path, batches: list[RecordBatch]) -> Path:
    with path.open("wb") as fh, ExportWriter(fh) as w:
        for b in batches:
            w.write_batch(b)
    return path


def test_layout_is_the_documented_one(tmp_path: Path) -> None:
    path = write(tmp_path / "a.pxp", [batch("puente.audit.MX", 2, 1)])
    data = path.read_bytes()
    topic = b"puente.audit.MX"
    expected = (
        MAGIC
        + b"\x01" + struct.pack(">HH", 0, len(topic)) + topic + struct.pack(">i", 2)
        + b"\x02" + struct.pack(">HIQ", 0, 1, 8 + 8 + 4 + 4 + 2 + 7)
        + struct.pack(">q", 0) + struct.pack(">q", 1000) + struct.pack(">i", 2)
        + struct.pack(">i", 7) + b"k0" + b"value 0"
        + b"\x03" + struct.pack(">Q", 1)
    )  # fmt: skip
    assert data == expected


def test_round_trip_and_filtering_by_kind(tmp_path: Path) -> None:
    n = Naming()
    batches = [
        batch(n.topic(TRUST), 0, 1),
        batch(n.topic(CHECKPOINTS), 0, 3),
        batch(n.topic(AUDIT, "MX"), 0, 5000),  # more than one read batch
        batch(n.topic(AUDIT, "GT"), 1, 10),
        batch(n.topic(AUDIT, "MX"), 0, 5, start=5000),
        batch("puente.deliver.MX", 0, 4),  # not an audit topic: never read as one
    ]
    src = ExportFile(write(tmp_path / "a.pxp", batches))
    got = list(src.batches(AUDIT))
    assert {(b.topic, b.partition) for b in got} == {("puente.audit.MX", 0), ("puente.audit.GT", 1)}
    mx = [o for b in got if b.topic == "puente.audit.MX" for o in b.offsets]
    assert mx == list(range(5005))
    first = got[0]
    assert (
        first.keys[:2] == [b"k0", None] and first.values[3] == b"" and first.timestamps[0] == 1000
    )
    assert [len(b) for b in src.batches(CHECKPOINTS)] == [3]
    assert not src.status.truncated and src.status.records == 5023
    out = io.BytesIO()
    assert export(src, out, [TRUST, CHECKPOINTS, AUDIT]) == 1 + 3 + 5015
    (tmp_path / "b.pxp").write_bytes(out.getvalue())
    again = ExportFile(tmp_path / "b.pxp")
    assert [list(b.values) for b in again.batches(AUDIT)] == [list(b.values) for b in got]


def test_cut_files_and_garbage(tmp_path: Path) -> None:
    path = write(tmp_path / "a.pxp", [batch("puente.audit.MX", 0, 10)])
    data = path.read_bytes()
    (tmp_path / "cut.pxp").write_bytes(data[:-20])
    src = ExportFile(tmp_path / "cut.pxp")
    got = [o for b in src.batches(AUDIT) for o in b.offsets]
    assert src.status.truncated and got == list(range(len(got))) and len(got) < 10
    (tmp_path / "noend.pxp").write_bytes(data[:-9])
    src = ExportFile(tmp_path / "noend.pxp")
    assert len([o for b in src.batches(AUDIT) for o in b.offsets]) == 10
    assert src.status.truncated
    (tmp_path / "bad.pxp").write_bytes(b"not an export")
    with pytest.raises(ExportError):
        list(ExportFile(tmp_path / "bad.pxp").batches(AUDIT))
    (tmp_path / "type.pxp").write_bytes(MAGIC + b"\x09")
    with pytest.raises(ExportError):
        list(ExportFile(tmp_path / "type.pxp").batches(AUDIT))


def test_sources_are_pluggable(tmp_path: Path) -> None:
    path = write(tmp_path / "a.pxp", [batch("puente.audit.MX", 0, 2)])
    naming = Naming()
    assert isinstance(open_source(str(path), naming), ExportFile)
    assert isinstance(open_source(f"file:{path}", naming), ExportFile)
    with pytest.raises(PuenteError) as exc:
        open_source("kafka:localhost:9092", naming)
    assert exc.value.reason == "SOURCE_UNKNOWN"
    register_source("memory", lambda rest, n: ExportFile(path, naming=n))
    try:
        assert isinstance(open_source("memory:x", naming), ExportFile)
    finally:
        source_module._FACTORIES.pop("memory")

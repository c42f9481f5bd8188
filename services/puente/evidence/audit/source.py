"""Where the auditor reads topics from: a small record-source protocol and the export file.

A :class:`RecordSource` yields :class:`RecordBatch` es — consecutive records of one topic
partition, in offset order — for a family of topics (audit, checkpoints, trust). The export file
implements it here; a Kafka reader (read_committed, from the earliest offset) implements the
same two methods and registers itself with :func:`register_source` under the ``kafka`` scheme.

The export file format (``.pxp``), all integers big-endian::

    magic      8 bytes  "PNTEXP" 0x00 0x01          (format version 1)
    frames     repeated, each starting with one type byte:
      0x01 STREAM  u16 stream id, u16 topic length, topic (UTF-8), i32 partition
      0x02 RECORD  u16 stream id, i64 offset, i64 timestamp ms (-1: none),
                   i32 key length (-1: null), key, i32 value length (-1: null), value
      0x03 END     u64 number of RECORD frames in the file
    (nothing after END; a file without END was cut short)

Key and value are the record's bytes exactly as they were on Kafka, so the hashes the auditor
computes are over what the broker stored.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from puente.errors import PuenteError
from puente.topics import Naming, Scope, TopicKind

MAGIC = b"PNTEXP\x00\x01"
STREAM, RECORD, END = 0x01, 0x02, 0x03
_STREAM_HEAD = struct.Struct(">HH")
_I32 = struct.Struct(">i")
_RECORD_HEAD = struct.Struct(">Hqqi")
_END = struct.Struct(">Q")
BATCH_SIZE = 4096


class ExportError(PuenteError):
    """An export file that is not in the documented format."""

    reason = "EXPORT_MALFORMED"


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """Consecutive records of one topic partition, in offset order."""

    topic: str
    partition: int
    offsets: Sequence[int]
    timestamps: Sequence[int]
    keys: Sequence[bytes | None]
    values: Sequence[bytes | None]

    def __len__(self) -> int:
        return len(self.offsets)


class RecordSource(Protocol):
    """What the auditor reads. Implementations: :class:`ExportFile`, a Kafka reader."""

    def batches(self, kind: TopicKind) -> Iterator[RecordBatch]:
        """Every record of every topic of ``kind``, partition by partition, in offset order.

        Batches of different partitions may interleave; within a partition, order is kept.
        """
        ...

    def describe(self) -> str:
        """A one-line description for reports (path, cluster, ...)."""
        ...


@dataclass
class SourceStatus:
    """What a source found wrong with itself (a file cut short), for the report."""

    truncated: bool = False
    records: int = 0
    bytes_read: int = 0
    total_bytes: int | None = None
    notes: list[str] = field(default_factory=list)


class ExportFile:
    """An export file as a :class:`RecordSource` (memory-mapped, read in one pass per kind)."""

    def __init__(self, path: Path, *, naming: Naming | None = None) -> None:
        self.path = path
        self.naming = naming or Naming()
        self.status = SourceStatus(total_bytes=path.stat().st_size)

    def describe(self) -> str:
        """The path."""
        return str(self.path)

    def batches(self, kind: TopicKind) -> Iterator[RecordBatch]:
        """Records of the topics of ``kind`` (others are skipped without being copied)."""
        wanted = _kind_filter(self.naming, kind)
        with self.path.open("rb") as fh:
            if self.status.total_bytes == 0:
                raise ExportError(f"{self.path}: empty file, not an export")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                view = memoryview(mm)
                try:
                    yield from _parse(view, wanted, self.status, str(self.path))
                finally:
                    view.release()  # the map cannot close while a view exists


def _kind_filter(naming: Naming, kind: TopicKind) -> Callable[[str], bool]:
    if kind.scope is Scope.GLOBAL:
        name = naming.topic(kind)
        return lambda topic: topic == name
    stem = naming.topic_stem_prefix(kind)
    return lambda topic: topic.startswith(stem) and len(topic) == len(stem) + 2


def _parse(
    buf: memoryview, wanted: Callable[[str], bool], status: SourceStatus, where: str
) -> Iterator[RecordBatch]:
    if bytes(buf[: len(MAGIC)]) != MAGIC:
        raise ExportError(f"{where}: not a Puente export (bad magic)")
    pos, end = len(MAGIC), len(buf)
    streams: dict[int, tuple[str, int, bool]] = {}
    count = 0
    cur: int | None = None
    offs: list[int] = []
    stamps: list[int] = []
    keys: list[bytes | None] = []
    vals: list[bytes | None] = []
    unpack_rec, unpack_i32 = _RECORD_HEAD.unpack_from, _I32.unpack_from
    saw_end = False

    def flush() -> RecordBatch | None:
        if cur is None or not offs:
            return None
        topic, partition, _ = streams[cur]
        return RecordBatch(topic, partition, offs, stamps, keys, vals)

    try:
        while pos < end:
            ftype = buf[pos]
            pos += 1
            if ftype == RECORD:
                sid, offset, ts, klen = unpack_rec(buf, pos)
                pos += 22
                if klen >= 0:
                    key: bytes | None = bytes(buf[pos : pos + klen])
                    pos += klen
                else:
                    key = None
                (vlen,) = unpack_i32(buf, pos)
                pos += 4
                count += 1
                stream = streams.get(sid)
                if stream is None:
                    raise ExportError(f"{where}: record of undeclared stream {sid}")
                if not stream[2]:
                    pos += max(vlen, 0)
                    continue
                if vlen >= 0:
                    value: bytes | None = bytes(buf[pos : pos + vlen])
                    pos += vlen
                else:
                    value = None
                if pos > end:
                    raise struct.error("record runs past the end of the file")
                if sid != cur or len(offs) >= BATCH_SIZE:
                    batch = flush()
                    if batch is not None:
                        yield batch
                    cur, offs, stamps, keys, vals = sid, [], [], [], []
                offs.append(offset)
                stamps.append(ts)
                keys.append(key)
                vals.append(value)
            elif ftype == STREAM:
                sid, tlen = _STREAM_HEAD.unpack_from(buf, pos)
                pos += 4
                topic = bytes(buf[pos : pos + tlen]).decode("utf-8")
                pos += tlen
                (partition,) = unpack_i32(buf, pos)
                pos += 4
                streams[sid] = (topic, partition, wanted(topic))
            elif ftype == END:
                (declared,) = _END.unpack_from(buf, pos)
                pos += 8
                if declared != count or pos != end:
                    raise ExportError(f"{where}: END frame does not match the file")
                saw_end = True
            else:
                raise ExportError(f"{where}: unknown frame type {ftype:#04x} at byte {pos - 1}")
            status.bytes_read = pos
    except (struct.error, IndexError):
        status.notes.append(f"cut short at byte {pos}")
        saw_end = False
    batch = flush()
    if batch is not None:
        yield batch
    status.records = count
    status.truncated = not saw_end


class ExportWriter:
    """Writes an export file; use as a context manager so the END frame is written."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._streams: dict[tuple[str, int], int] = {}
        self.records = 0
        out.write(MAGIC)

    def write_batch(self, batch: RecordBatch) -> None:
        """Append a batch of records of one topic partition."""
        key = (batch.topic, batch.partition)
        sid = self._streams.get(key)
        out = self._out
        if sid is None:
            sid = len(self._streams)
            if sid > 0xFFFF:
                raise ExportError("more than 65536 topic partitions in one export")
            self._streams[key] = sid
            topic = batch.topic.encode("utf-8")
            out.write(bytes([STREAM]) + _STREAM_HEAD.pack(sid, len(topic)) + topic)
            out.write(_I32.pack(batch.partition))
        rec = bytes([RECORD])
        for offset, ts, k, v in zip(
            batch.offsets, batch.timestamps, batch.keys, batch.values, strict=True
        ):
            klen = -1 if k is None else len(k)
            out.write(rec + _RECORD_HEAD.pack(sid, offset, ts, klen))
            if k is not None:
                out.write(k)
            out.write(_I32.pack(-1 if v is None else len(v)))
            if v is not None:
                out.write(v)
            self.records += 1

    def close(self) -> None:
        """Write the END frame (the file is complete only then)."""
        self._out.write(bytes([END]) + _END.pack(self.records))
        self._out.flush()

    def __enter__(self) -> ExportWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()


def export(source: RecordSource, out: BinaryIO, kinds: Iterable[TopicKind]) -> int:
    """Copy every record of ``kinds`` from ``source`` to an export file; returns the count."""
    with ExportWriter(out) as writer:
        for kind in kinds:
            for batch in source.batches(kind):
                writer.write_batch(batch)
    return writer.records


# --- pluggable sources ----------------------------------------------------------------------

SourceFactory = Callable[[str, Naming], RecordSource]
_FACTORIES: dict[str, SourceFactory] = {}


def register_source(scheme: str, factory: SourceFactory) -> None:
    """Make ``<scheme>:<rest>`` openable by :func:`open_source` (the Kafka layer registers
    ``kafka``)."""
    _FACTORIES[scheme] = factory


def open_source(spec: str, naming: Naming) -> RecordSource:
    """A source from ``file:PATH``, a bare path, or ``<scheme>:...`` of a registered factory."""
    scheme, sep, rest = spec.partition(":")
    if sep and scheme in _FACTORIES:
        return _FACTORIES[scheme](rest, naming)
    if sep and scheme == "file":
        return ExportFile(Path(rest), naming=naming)
    if sep and len(scheme) > 1 and not Path(spec).exists():
        raise PuenteError(
            f"no record source for {scheme!r}",
            reason="SOURCE_UNKNOWN",
            hint="give an export file (puente audit export writes one); "
            f"known schemes: file{''.join(', ' + s for s in sorted(_FACTORIES))}",
        )
    return ExportFile(Path(spec), naming=naming)

"""Where the auditor reads topics from: a small record-source protocol and the export file.

A :class:`RecordSource` yields :class:`RecordBatch` es — consecutive records of one topic
partition, in offset order — for a family of topics (audit, checkpoints, trust). The export file
implements it here; a Kafka reader (read_committed, from the earliest offset) implements the
same two methods and registers itself with :func:`register_source` under the ``kafka`` scheme.

The export file format (``.pxp``), all integers big-endian::

    magic      8 bytes  "PNTEXP" 0x00 0x02          (format version 2)
    frames     repeated, each starting with one type byte:
      0x01 STREAM   u16 stream id, u16 topic length, topic (UTF-8), i32 partition
      0x02 RECORDS  u16 stream id, u32 count n, u64 length of what follows, then columns:
                    n x i64 offset, n x i64 timestamp ms (-1: none),
                    n x i32 key length (-1: null), n x i32 value length (-1: null),
                    the keys one after the other, the values one after the other
      0x03 END      u64 number of records in the file
    (nothing after END; a file without END was cut short)

Records of one stream come in offset order, in one or more RECORDS frames. Key and value are the
record's bytes exactly as they were on Kafka, so the hashes the auditor computes are over what
the broker stored. The columns make reading cheap in any language (and in Python: a few C
calls per frame instead of several per record), and the length lets a reader skip a frame of
a topic it does not want in one step.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import BinaryIO, Protocol

from puente.errors import PuenteError
from puente.topics import Naming, Scope, TopicKind

MAGIC = b"PNTEXP\x00\x02"
STREAM, RECORDS, END = 0x01, 0x02, 0x03
_STREAM_HEAD = struct.Struct(">HH")
_I32 = struct.Struct(">i")
_RECORDS_HEAD = struct.Struct(">HIQ")
_END = struct.Struct(">Q")
FRAME_RECORDS = 4096  # records per RECORDS frame written: bounds what a reader holds at once


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
        raise ExportError(f"{where}: not a Puente export (bad magic or version)")
    pos, end = len(MAGIC), len(buf)
    streams: dict[int, tuple[str, int, bool]] = {}
    count = 0
    saw_end = False
    try:
        while pos < end:
            ftype = buf[pos]
            pos += 1
            if ftype == RECORDS:
                sid, n, length = _RECORDS_HEAD.unpack_from(buf, pos)
                pos += _RECORDS_HEAD.size
                body = pos
                pos += length
                if pos > end:
                    raise struct.error("frame runs past the end of the file")
                stream = streams.get(sid)
                if stream is None:
                    raise ExportError(f"{where}: records of undeclared stream {sid}")
                count += n
                if stream[2]:
                    yield _columns(buf, body, pos, stream[0], stream[1], n, where)
            elif ftype == STREAM:
                sid, tlen = _STREAM_HEAD.unpack_from(buf, pos)
                pos += 4
                topic = bytes(buf[pos : pos + tlen]).decode("utf-8")
                pos += tlen
                (partition,) = _I32.unpack_from(buf, pos)
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
    status.records = count
    status.truncated = not saw_end


def _columns(
    buf: memoryview, pos: int, end: int, topic: str, partition: int, n: int, where: str
) -> RecordBatch:
    offsets = list(struct.unpack_from(f">{n}q", buf, pos))
    pos += 8 * n
    stamps = list(struct.unpack_from(f">{n}q", buf, pos))
    pos += 8 * n
    klens = struct.unpack_from(f">{n}i", buf, pos)
    pos += 4 * n
    vlens = struct.unpack_from(f">{n}i", buf, pos)
    pos += 4 * n
    keys, pos = _cut(buf, pos, klens)
    values, pos = _cut(buf, pos, vlens)
    if pos != end:
        raise ExportError(f"{where}: a RECORDS frame's length does not match its columns")
    return RecordBatch(topic, partition, offsets, stamps, keys, values)


def _cut(buf: memoryview, pos: int, lengths: Sequence[int]) -> tuple[list[bytes | None], int]:
    """Split the concatenated fields by their lengths (-1: null)."""
    if not lengths:
        return [], pos
    low = min(lengths)
    if low < 0 and max(lengths) < 0:
        return [None] * len(lengths), pos  # all null (keys, usually)
    sizes = lengths if low >= 0 else [max(n, 0) for n in lengths]
    ends = list(accumulate(sizes))
    total = ends[-1]
    blob = bytes(buf[pos : pos + total])
    if len(blob) != total:
        raise struct.error("column runs past the end")
    out: list[bytes | None] = [blob[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    if low < 0:
        out = [None if n < 0 else v for n, v in zip(lengths, out, strict=True)]
    return out, pos + total


class ExportWriter:
    """Writes an export file; use as a context manager so the END frame is written."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._streams: dict[tuple[str, int], int] = {}
        self.records = 0
        out.write(MAGIC)

    def write_batch(self, batch: RecordBatch) -> None:
        """Append a batch of records of one topic partition (one RECORDS frame)."""
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
        for a in range(0, len(batch.offsets), FRAME_RECORDS):
            b = a + FRAME_RECORDS
            self._frame(
                sid, batch.offsets[a:b], batch.timestamps[a:b], batch.keys[a:b], batch.values[a:b]
            )

    def _frame(
        self,
        sid: int,
        offsets: Sequence[int],
        stamps: Sequence[int],
        keys: Sequence[bytes | None],
        values: Sequence[bytes | None],
    ) -> None:
        n = len(offsets)
        klens = [-1 if k is None else len(k) for k in keys]
        vlens = [-1 if v is None else len(v) for v in values]
        body = b"".join(
            [
                struct.pack(f">{n}q", *offsets),
                struct.pack(f">{n}q", *stamps),
                struct.pack(f">{n}i", *klens),
                struct.pack(f">{n}i", *vlens),
                *(k for k in keys if k is not None),
                *(v for v in values if v is not None),
            ]
        )
        self._out.write(bytes([RECORDS]) + _RECORDS_HEAD.pack(sid, n, len(body)) + body)
        self.records += n

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

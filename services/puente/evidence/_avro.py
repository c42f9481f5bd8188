"""The one bridge between evidence objects and the project's Avro codec."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from puente.codec.registry import Registry
from puente.codec.wire import decode, encode


class AvroRecord:
    """Mixin for an evidence dataclass stored as one Avro record (single-object encoding).

    Subclasses name their schema in ``AVRO_NAME`` and convert with ``to_avro``/``from_avro``
    (times as aware datetimes, as the codec wants them).
    """

    AVRO_NAME: ClassVar[str]
    __slots__ = ()  # a subclass with slots keeps its instances small (the tracker's tracks)

    def to_avro(self) -> dict[str, Any]:
        """The record as the Avro codec takes it."""
        raise NotImplementedError

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> Self:
        """The inverse of :meth:`to_avro`."""
        raise NotImplementedError

    def encode(self, registry: Registry) -> bytes:
        """The single-object encoding (``C3 01``, fingerprint, Avro body)."""
        return encode(registry, self.AVRO_NAME, self.to_avro())

    @classmethod
    def decode(cls, registry: Registry, data: bytes) -> Self:
        """Decode single-object-encoded bytes (``puente.codec`` errors on malformed input)."""
        return cls.from_avro(decode(registry, data, reader=cls.AVRO_NAME))

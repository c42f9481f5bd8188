"""Response bodies, as pydantic models for the OpenAPI document.

Handlers on the hot path write their JSON with orjson directly; these models are the contract
those bodies follow (the tests validate real responses against the published document).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class NoticeAccepted(BaseModel):
    """A notice Kafka acknowledged (acks=all) on the caller's ingress topic."""

    notice_id: str = Field(description="the notice's id (lower-case UUID)")
    type: str = Field(description="full record name, e.g. puente.CaseNotice")
    origin: str = Field(description="the caller's state")
    topic: str
    partition: int
    offset: int
    sha256: str = Field(
        description="hex SHA-256 of the notice's Avro single-object encoding (the "
        "original_sha256 the audit log records)"
    )
    sealed_sha256: str | None = Field(
        default=None,
        description="hex SHA-256 of the envelope produced: the notice sealed to the state's "
        "node (absent in the replayed answer of a notice accepted before gateways sealed)",
    )
    accepted_at: str = Field(description="when Kafka acknowledged it (RFC 3339, UTC)")


class ReceiptAccepted(BaseModel):
    """A delivery receipt Kafka acknowledged on the caller's receipts topic."""

    receipt_id: str
    notice_id: str
    recipient: str
    signed: bool = Field(description="whether a signature travels with the receipt")
    signature_verified: bool = Field(
        description="whether the gateway checked that signature against the trust list"
    )
    topic: str
    partition: int
    offset: int
    sha256: str = Field(description="hex SHA-256 of the receipt's Avro single-object encoding")
    accepted_at: str


class ItemError(BaseModel):
    """Why a record could not be decoded, verified or opened (its raw bytes are still given)."""

    reason: str
    message: str


class SignatureMaterial(BaseModel):
    """Per-delivery mode: an Ed25519 signature over the delivery's signed bytes."""

    mode: Literal["signature"]
    key_id: str
    signature: str = Field(description="base64, 64 bytes")


class BatchMaterial(BaseModel):
    """Batch mode: an inclusion proof into a signed batch note."""

    mode: Literal["batch"]
    batch_note: str = Field(description="the signed C2SP note (checkpoint form) of the batch")
    leaf_index: int
    inclusion_path: list[str] = Field(description="base64 32-byte hashes, lowest level first")


class LogPosition(BaseModel):
    """Where the decision that allowed a delivery sits in the audit log."""

    log_id: str = Field(description="the audit log (its checkpoints' origin line)")
    leaf_index: int = Field(description="the decision record's leaf index")


class DeliveryItem(BaseModel):
    """One record of the caller's deliver topic."""

    cursor: str = Field(description="resume here to get the records after this one")
    partition: int
    offset: int
    timestamp: str
    delivery: str = Field(description="base64 of the record value: a puente.Delivery, verbatim")
    delivery_digest: str | None = Field(
        default=None, description="hex SHA-256 of the signed bytes (what a receipt acknowledges)"
    )
    verification: SignatureMaterial | BatchMaterial | None = None
    log_position: LogPosition | None = None
    finality: Literal["signed", "witnessed"] | None = Field(
        default=None,
        description="present when the delivery verified: signed (by its origin's node) or "
        "witnessed (its log position is covered by a checkpoint a quorum of other states' "
        "witnesses cosigned, as far as the gateway has read them: GET /v1/finality)",
    )
    statement: dict[str, Any] | None = Field(
        default=None,
        description="the signed DeliveryStatement, decoded: present when the delivery verified "
        "for the caller's state (the bytes in delivery are the evidence)",
    )
    notice_type: str | None = None
    notice: dict[str, Any] | None = Field(
        default=None,
        description="the delivered notice, decoded: present only when the delivery verified "
        "for the caller's state and its sealed payload opened with the state's key",
    )
    notice_avro: str | None = Field(
        default=None,
        description="base64 of the opened notice's Avro single-object encoding: its SHA-256 is "
        "the signed statement's payload_sha256 (present with notice)",
    )
    error: ItemError | None = Field(
        default=None,
        description="why the item has no notice: it does not decode, does not verify for the "
        "caller's state, or does not open (reason code)",
    )


class Page(BaseModel):
    """A page of a feed."""

    next_cursor: str = Field(description="pass as ?cursor= for the next page")
    caught_up: bool = Field(description="no later committed record existed when read")
    gap: bool = Field(
        description="the cursor pointed at records retention already deleted; read from the "
        "oldest kept"
    )


class DeliveryPage(Page):
    """A page of deliveries."""

    items: list[DeliveryItem]


class RejectionItem(BaseModel):
    """One record of the caller's rejected topic."""

    cursor: str
    partition: int
    offset: int
    timestamp: str
    record_type: str | None = Field(default=None, description="e.g. puente.Rejection")
    rejection: dict[str, Any] | None = Field(default=None, description="the record, decoded")
    raw: str = Field(description="base64 of the record value")
    error: ItemError | None = None


class RejectionPage(Page):
    """A page of rejections."""

    items: list[RejectionItem]


class SchemaSummary(BaseModel):
    """One record schema of the registry."""

    name: str
    versions: list[int]
    latest: int
    fingerprint: str = Field(
        description="CRC-64-AVRO of the latest version: its 8 bytes as in the "
        "single-object header, 16 hex digits",
    )
    notice_type: bool = Field(description="accepted by POST /v1/notices")


class SchemaList(BaseModel):
    """Every record schema of the registry."""

    schemas: list[SchemaSummary]


class SchemaDetail(BaseModel):
    """One version of one record schema."""

    name: str
    version: int
    fingerprint: str
    avro: dict[str, Any] = Field(description="the .avsc document")
    json_schema: dict[str, Any] = Field(description="JSON Schema of the record's JSON form")


class Status(BaseModel):
    """Liveness or readiness."""

    status: str

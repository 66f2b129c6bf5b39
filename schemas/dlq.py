"""The dead-letter envelope: what failed, where, why, and a truncated copy of the input."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from schemas.base import Record


class ErrorKind(StrEnum):
    UNDECODABLE = "undecodable"  # bytes that are not UTF-8 JSON
    INVALID_JSON = "invalid_json"
    SCHEMA = "schema"  # valid JSON of the wrong shape
    UNKNOWN_TASK = "unknown_task"
    UNKNOWN_PRODUCT = "unknown_product"
    OVERSIZED = "oversized"
    PROCESSING = "processing"  # the stage's own code failed on this record


class DlqEnvelope(Record):
    """A record a stage could not process (topic ``dlq``)."""

    stage: str
    topic: str
    partition: int
    offset: int
    error_kind: ErrorKind
    message: str = Field(max_length=8_000)
    key: str | None = None
    #: The input, decoded as UTF-8 with replacement, truncated, configured fields redacted.
    payload: str
    payload_truncated: bool = False
    payload_bytes: int
    failed_at: float

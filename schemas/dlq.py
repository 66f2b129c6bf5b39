"""The dead-letter envelope: what failed, where, why, and a copy of the input to replay."""

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
    #: The request the record carries, where it was readable enough to say (its query then
    #: ended with a ``PredictionFailure`` on ``predictions``).
    request_id: str | None = Field(default=None, max_length=512)
    #: The input, decoded as UTF-8 with replacement, configured fields and URL secrets
    #: redacted; whole up to ``dlq.payload_max_bytes`` (``caslie dlq replay`` re-drives it).
    payload: str = Field(max_length=1_000_000)
    #: Cut short (``caslie dlq replay`` refuses it).
    payload_truncated: bool = False
    #: Redaction changed it (a replay sends the redacted values).
    payload_redacted: bool = False
    payload_bytes: int
    failed_at: float

"""Bytes on a topic -> validated model, with a precise reason when that fails.

A record without a value (a Kafka tombstone: the delete of its key in a compacted topic)
decodes as :data:`TOMBSTONE` on the topics where it means a delete (:data:`TOMBSTONE_TOPICS`)
and is refused elsewhere. :func:`encode_value` turns a tombstone back into a null value.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.dlq import ErrorKind
from schemas.registry import validate
from schemas.tasks.registry import is_task, task_codes
from streams.exceptions import DecodeFailure

#: Records larger than this are refused before parsing.
MAX_RECORD_BYTES = 1_000_000
#: Topics on which a record without a value deletes its key.
TOMBSTONE_TOPICS = frozenset(
    {
        "catalog",
        "router.products",
        "router.reviews",
        "router.claims",
        "router.rejected",
        "accumulator.state",
    }
)
#: Changelogs that the router writes: JSON ``null`` there is a tombstone too (what
#: :func:`encode` makes of one, for a producer that cannot send a null value).
_CHANGELOGS = frozenset(
    {"router.products", "router.reviews", "router.claims", "router.rejected", "accumulator.state"}
)


class Tombstone(BaseModel):
    """A record without a value: the delete of its key."""

    model_config = ConfigDict(frozen=True)


TOMBSTONE = Tombstone()


def encode(record: BaseModel) -> bytes:
    """The record as JSON (a tombstone as JSON ``null``: use :func:`encode_value` to send a
    real null value)."""
    if isinstance(record, Tombstone):
        return b"null"
    return orjson.dumps(record.model_dump(mode="json", exclude_none=True))


def encode_value(record: BaseModel) -> bytes | None:
    """The value to produce: ``None`` (a Kafka tombstone) for a :class:`Tombstone`."""
    return None if isinstance(record, Tombstone) else encode(record)


def decode_json(raw: bytes | None, max_bytes: int = MAX_RECORD_BYTES) -> Any:
    """Bytes -> JSON value; raises :class:`DecodeFailure` with the error kind."""
    if raw is None:
        raise DecodeFailure(ErrorKind.SCHEMA, "record has no value (tombstone)")
    if len(raw) > max_bytes:
        raise DecodeFailure(
            ErrorKind.OVERSIZED, f"record of {len(raw)} bytes exceeds the {max_bytes}-byte limit"
        )
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeFailure(ErrorKind.UNDECODABLE, f"value is not UTF-8: {exc}") from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeFailure(ErrorKind.INVALID_JSON, f"value is not valid JSON: {exc}") from None


def describe_validation_error(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def decode(raw: bytes | None, logical_topic: str, max_bytes: int = MAX_RECORD_BYTES) -> BaseModel:
    """Bytes -> the topic's model (:data:`TOMBSTONE` for a null value on one of
    :data:`TOMBSTONE_TOPICS`); raises :class:`DecodeFailure` with the error kind."""
    if raw is None and logical_topic in TOMBSTONE_TOPICS:
        return TOMBSTONE
    obj = decode_json(raw, max_bytes)
    if obj is None and logical_topic in _CHANGELOGS:
        return TOMBSTONE
    if logical_topic == "queries":
        if not isinstance(obj, dict):
            raise DecodeFailure(ErrorKind.SCHEMA, "a query must be a JSON object")
        task = obj.get("task")
        if not is_task(task):
            raise DecodeFailure(
                ErrorKind.UNKNOWN_TASK, f"unknown task {task!r}; known: {', '.join(task_codes())}"
            )
    try:
        return validate(logical_topic, obj)
    except ValidationError as exc:
        raise DecodeFailure(ErrorKind.SCHEMA, describe_validation_error(exc)) from None

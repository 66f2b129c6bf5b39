"""Bytes on a topic -> validated model, with a precise reason when that fails."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from schemas.dlq import ErrorKind
from schemas.registry import validate
from schemas.tasks.spec import TaskCode
from streams.exceptions import DecodeFailure

#: Records larger than this are refused before parsing.
MAX_RECORD_BYTES = 1_000_000
_TASK_CODES = {code.value for code in TaskCode}


def encode(record: BaseModel) -> bytes:
    return orjson.dumps(record.model_dump(mode="json", exclude_none=True))


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
    """Bytes -> the topic's model; raises :class:`DecodeFailure` with the error kind."""
    obj = decode_json(raw, max_bytes)
    if logical_topic == "queries" and isinstance(obj, dict):
        task = obj.get("task")
        if not isinstance(task, str) or task not in _TASK_CODES:
            raise DecodeFailure(
                ErrorKind.UNKNOWN_TASK,
                f"unknown task {task!r}; known: {', '.join(sorted(_TASK_CODES))}",
            )
    try:
        return validate(logical_topic, obj)
    except ValidationError as exc:
        raise DecodeFailure(ErrorKind.SCHEMA, describe_validation_error(exc)) from None

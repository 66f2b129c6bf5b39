"""Common base for every record on every topic.

Records are immutable pydantic models that carry a schema ``version``; the wire format is JSON
encoded with orjson.

Versions are additive (docs/events.md, "Versions"): version ``N + 1`` of a topic's record may
only add optional top-level fields to version ``N``; a change that is not additive gets a new
topic, never a new version. So a reader of version ``SCHEMA_VERSION``:

* reads a record of any version ``>= 1``;
* ignores the top-level fields it does not know, from a newer version or from a producer that
  added one before the schema did (a rolling upgrade must not break consumers), but keeps
  them: they are part of the model (pydantic ``extra="allow"``) and :meth:`Record.to_json`
  writes them back, so a record passed on unchanged (the router's tables) loses nothing. At
  most :data:`MAX_UNKNOWN_FIELDS` of them, with names of at most :data:`MAX_FIELD_NAME`
  characters; their values count against the record's byte limit
  (``streams.codec.MAX_RECORD_BYTES``). The price is that a misspelt optional field is kept
  as an unknown one, not refused: a required field misspelt is still refused (it is missing).

Nested objects (image references, aspect specs, captions) stay closed: a version adds fields at
the top level only.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, ClassVar, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

#: The record version this code writes, and the newest whose fields it knows.
SCHEMA_VERSION = 1
#: A record of a newer version may carry at most this many fields unknown to this reader ...
MAX_UNKNOWN_FIELDS = 32
#: ... each named in at most this many characters.
MAX_FIELD_NAME = 64

#: Identifiers: printable, bounded, no surrounding whitespace.
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=256, strip_whitespace=True, pattern=r"^\S.*$")
]
#: Free text fields (titles, questions, queries).
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=4_000)]
#: Long text fields (reviews, supporting documents).
LongText = Annotated[str, StringConstraints(min_length=1, max_length=50_000)]


def now() -> float:
    """Wall-clock time in seconds since the epoch, the unit of every timestamp."""
    return time.time()


def _bounded_unknown_fields(schema: dict[str, Any], cls: type) -> None:
    """JSON Schema of a record: the rule of :class:`Record` (a few unknown fields, kept).
    JSON Schema cannot count the unknown fields alone: the file bounds all fields (the known
    ones and :data:`MAX_UNKNOWN_FIELDS` more), the model the unknown ones."""
    names = sorted(schema.get("properties", {}))
    schema["maxProperties"] = len(names) + MAX_UNKNOWN_FIELDS
    schema["propertyNames"] = {"maxLength": max([MAX_FIELD_NAME, *map(len, names)])}


class Record(BaseModel):
    """Base of all topic records: versioned, forward compatible (module docstring), orjson on
    the wire."""

    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        str_max_length=200_000,
        json_schema_extra=_bounded_unknown_fields,
    )

    #: Which schema version wrote this record (any version ``>= 1`` is read).
    version: int = Field(default=SCHEMA_VERSION, ge=1)

    topic_name: ClassVar[str | None] = None

    @model_validator(mode="after")
    def _unknown_fields(self) -> Self:
        extra = self.model_extra or {}
        if not extra:
            return self
        names = sorted(extra)
        if len(names) > MAX_UNKNOWN_FIELDS:
            raise ValueError(
                f"{len(names)} fields unknown to version {SCHEMA_VERSION}: at most "
                f"{MAX_UNKNOWN_FIELDS} are kept"
            )
        long = [n for n in names if len(n) > MAX_FIELD_NAME]
        if long:
            raise ValueError(f"field name of {len(long[0])} characters: at most {MAX_FIELD_NAME}")
        return self

    @property
    def unknown_fields(self) -> dict[str, Any]:
        """The fields this reader does not know (kept, not read)."""
        return dict(self.model_extra or {})

    def to_json(self) -> bytes:
        """Serialise to compact JSON bytes (orjson)."""
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        """Parse and validate JSON bytes (raises pydantic or orjson errors)."""
        return cls.model_validate(orjson.loads(data))

    @classmethod
    def from_obj(cls, obj: Any) -> Self:
        return cls.model_validate(obj)

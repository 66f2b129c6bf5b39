"""Common base for every record on every topic.

Records are immutable pydantic models, reject unknown fields, and carry a schema ``version``
so consumers can tell old shapes from new ones. Wire format is JSON encoded with orjson.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, ClassVar, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = 1

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


class Record(BaseModel):
    """Base of all topic records: strict shape, versioned, orjson on the wire."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=200_000)

    #: Which schema version wrote this record.
    version: int = Field(default=SCHEMA_VERSION, ge=1, le=SCHEMA_VERSION)

    topic_name: ClassVar[str | None] = None

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

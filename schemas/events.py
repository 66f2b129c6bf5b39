"""Events that users produce: catalog products, reviews, claims, listings (with their
categories' aspect schemas), and task queries.

Query events name products (and claims) by id; the router resolves them into self-contained
:class:`schemas.records.TaskRequest` records. Each task's query model lives in its task module
(:mod:`schemas.tasks`) and extends :class:`Query`; :func:`parse_query` picks it by ``task``.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from schemas.base import Identifier, LongText, Record, ShortText
from schemas.images import ImageRef

#: A claim's customer text is bounded (a complaint or a chat transcript).
CLAIM_TEXT_LIMIT = 8_000


class ProductEvent(Record):
    """A catalog upsert (or tombstone with ``deleted``), keyed by ``product_id``."""

    product_id: Identifier
    title: ShortText
    category: ShortText | None = None
    brand: ShortText | None = None
    description: LongText | None = None
    images: list[ImageRef] = Field(default_factory=list, max_length=16)
    #: Candidate fine-grained categories, used when the router auto-triggers CC.
    category_options: list[ShortText] | None = Field(default=None, min_length=2, max_length=20)
    deleted: bool = False
    event_time: float | None = None


class ReviewEvent(Record):
    """A product review, keyed by ``product_id``."""

    review_id: Identifier
    product_id: Identifier
    text: LongText
    rating: int | None = Field(default=None, ge=1, le=5)
    images: list[ImageRef] = Field(default_factory=list, max_length=16)
    user_id: Identifier | None = None
    event_time: float | None = None


class ClaimEvent(Record):
    """A customer contact about a delivered order (topic ``claims``, keyed by ``claim_id``):
    the listing it is about, the customer's text and photos. VIT-Pro's tasks (DD, PM, AE) are
    asked of claims."""

    claim_id: Identifier
    #: The listing the customer ordered.
    product_id: Identifier
    text: str = Field(min_length=1, max_length=CLAIM_TEXT_LIMIT)
    images: list[ImageRef] = Field(min_length=1, max_length=8)
    order_id: Identifier | None = None
    event_time: float | None = None


#: A listing's seller text is bounded (OPAL: a short note the seller typed).
SELLER_TEXT_LIMIT = 2_000


class ListingEvent(Record):
    """A seller's new item (topic ``listings``, keyed by ``listing_id``): its category and
    photos, and what the seller typed. OPAL's LG drafts the listing (title and aspects)."""

    listing_id: Identifier
    #: The marketplace category (``womens-shoes``), the key of its aspect schema.
    category: Identifier
    images: list[ImageRef] = Field(min_length=1, max_length=8)
    seller_text: str | None = Field(default=None, max_length=SELLER_TEXT_LIMIT)
    event_time: float | None = None


class AspectSpec(BaseModel):
    """One aspect of a category: its name, whether a listing must fill it, and its allowed
    values (``None``: free text). Part of :class:`AspectSchemaEvent` and of LG's requests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=40)
    required: bool = False
    values: list[ShortText] | None = Field(default=None, min_length=1, max_length=200)


class AspectSchemaEvent(Record):
    """The aspects a category's listings may carry (compacted topic ``aspect_schemas``, keyed
    by ``category``); an update applies to the listings that arrive after it."""

    category: Identifier
    aspects: list[AspectSpec] = Field(min_length=1, max_length=50)
    event_time: float | None = None

    @field_validator("aspects")
    @classmethod
    def _distinct(cls, aspects: list[AspectSpec]) -> list[AspectSpec]:
        names = [a.name for a in aspects]
        if len(set(names)) != len(names):
            raise ValueError(f"aspect names repeat: {names}")
        return aspects


def load_aspect_schemas(path: Path) -> list[AspectSchemaEvent]:
    """A JSON file holding a list of :class:`AspectSchemaEvent` objects (tests, fixtures);
    raises ``pydantic.ValidationError`` for a bad one."""
    adapter = TypeAdapter(list[AspectSchemaEvent])
    return adapter.validate_python(orjson.loads(path.read_bytes()))


class Query(Record):
    """What every query has; a task's query model adds its own fields and ``task``."""

    request_id: Identifier
    task: str
    event_time: float | None = None
    #: Optional adapter override, e.g. ``generalist`` or ``sa-special``.
    adapter: Identifier | None = None


def parse_query(obj: object) -> Query:
    """Validate a decoded JSON object as the query of its task (``KeyError`` for an unknown
    task, ``pydantic.ValidationError`` for a bad shape)."""
    from schemas.tasks.registry import get_task

    task = obj.get("task") if isinstance(obj, dict) else None
    if not isinstance(task, str):
        raise KeyError(f"a query needs a 'task' string, got {task!r}")
    return get_task(task).query_model.model_validate(obj)

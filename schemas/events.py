"""Events that users produce: catalog products, reviews, and task queries.

Query events name products by id; the router resolves them into self-contained
:class:`schemas.records.TaskRequest` records.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, model_validator

from schemas.base import Identifier, LongText, Record, ShortText
from schemas.images import ImageRef


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


class _Query(Record):
    request_id: Identifier
    event_time: float | None = None
    #: Optional adapter override, e.g. ``generalist`` or ``sa-special``.
    adapter: Identifier | None = None


class APQuery(_Query):
    """Answerability: is ``question`` answerable from a document about the product?"""

    task: Literal["AP"]
    product_id: Identifier
    question: ShortText
    #: Supporting document; when absent the router joins the product's recent reviews.
    document: LongText | None = None


class CCQuery(_Query):
    """Category classification among ``options``."""

    task: Literal["CC"]
    product_id: Identifier
    options: list[ShortText] = Field(min_length=2, max_length=20)


class PRPQuery(_Query):
    """Product relation between ``product_id`` (product 1) and ``other_product_id``."""

    task: Literal["PRP"]
    product_id: Identifier
    other_product_id: Identifier


class PSIQuery(_Query):
    """Can the product substitute for what ``query`` asks for?"""

    task: Literal["PSI"]
    product_id: Identifier
    query: ShortText


class MPCQuery(_Query):
    """ESCI relevance of the product to ``query``."""

    task: Literal["MPC"]
    product_id: Identifier
    query: ShortText


class SAQuery(_Query):
    """Sentiment of a review: inline (``review`` + ``images``) or by ``review_id``."""

    task: Literal["SA"]
    review: LongText | None = None
    images: list[ImageRef] = Field(default_factory=list, max_length=16)
    review_id: Identifier | None = None
    #: Needed with ``review_id``: the product whose recent reviews hold it.
    product_id: Identifier | None = None

    @model_validator(mode="after")
    def _review_given(self) -> SAQuery:
        if self.review is None and (self.review_id is None or self.product_id is None):
            raise ValueError("SA query needs 'review' text, or 'review_id' with 'product_id'")
        return self


class SRQuery(_Query):
    """Next purchase: history product ids, candidate product ids (options A..T)."""

    task: Literal["SR"]
    history_product_ids: list[Identifier] = Field(min_length=1, max_length=20)
    candidate_product_ids: list[Identifier] = Field(min_length=2, max_length=20)


QueryEvent = Annotated[
    APQuery | CCQuery | PRPQuery | PSIQuery | MPCQuery | SAQuery | SRQuery,
    Field(discriminator="task"),
]
QUERY_ADAPTER: TypeAdapter[QueryEvent] = TypeAdapter(QueryEvent)


def parse_query(obj: object) -> QueryEvent:
    """Validate a decoded JSON object as one of the seven query kinds."""
    return QUERY_ADAPTER.validate_python(obj)


def query_product_ids(query: QueryEvent) -> list[str]:
    """Every product id a query needs from the catalog, in order, without repeats."""
    ids: list[str] = []
    match query:
        case PRPQuery():
            ids = [query.product_id, query.other_product_id]
        case SRQuery():
            ids = [*query.history_product_ids, *query.candidate_product_ids]
        case SAQuery():
            ids = [query.product_id] if query.product_id and query.review is None else []
        case _:
            ids = [query.product_id]
    return list(dict.fromkeys(ids))

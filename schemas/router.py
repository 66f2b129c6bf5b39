"""The router's own topics: its table changelogs and its delay queue for late products."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.base import Identifier, Record
from schemas.events import ReviewEvent


class RecentReviews(Record):
    """The latest reviews of one product (topic ``router.reviews``, compacted by product)."""

    product_id: Identifier
    reviews: list[ReviewEvent] = Field(max_length=100)


class WaitingQuery(BaseModel):
    """A query whose products have not arrived yet (topic ``queries.waiting``).

    Instead of holding waiting queries in memory (lost on a crash), the router re-publishes
    them with a deadline; records there are in ``not_before`` order per partition, so the
    waiting stage simply sleeps until the head is due.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The original query, as JSON text.
    query: str
    source_topic: str
    source_partition: int
    source_offset: int
    first_seen: float
    deadline: float
    not_before: float
    attempts: int = 0

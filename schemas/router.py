"""The router's own topics: its table changelogs and its delay queue for late products."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.base import Identifier, Record
from schemas.events import ReviewEvent


class RecentReviews(Record):
    """The latest reviews of one product (topic ``router.reviews``, compacted by product)."""

    product_id: Identifier
    reviews: list[ReviewEvent] = Field(max_length=100)


class RejectedProduct(Record):
    """A catalog record the router dead-lettered (topic ``router.rejected``, compacted by
    product): a query naming a product that is absent from the table but rejected here fails
    at once with this reason instead of waiting for it. A later valid upsert or delete of the
    product deletes the marker."""

    product_id: Identifier
    reason: str = Field(min_length=1, max_length=1_000)
    rejected_at: float


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

"""The router's delay queue: queries whose products have not arrived yet.

Instead of holding waiting queries in memory (lost on a crash), the router re-publishes them
to the ``queries.waiting`` topic with a deadline. Records there are in ``not_before`` order
per partition, so the waiting agent simply sleeps until the head is due.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class WaitingQuery(BaseModel):
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

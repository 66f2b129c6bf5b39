"""The accumulator's own topic: its table of joins in progress (``accumulator.state``)."""

from __future__ import annotations

from pydantic import Field

from schemas.base import Identifier, Record
from schemas.records import EnrichedRecord, LabelEvent


class JoinState(Record):
    """One request id's join of an enriched record with its label (topic
    ``accumulator.state``, compacted by request id; a tombstone drops it).

    Either side may come first and wait for the other. ``written`` is the digest of the last
    (record, label) pair written to a shard: the join is finished but unwritten while the
    pair's digest differs from it (:func:`training.accumulate.join.unwritten`)."""

    request_id: Identifier
    record: EnrichedRecord | None = None
    label: LabelEvent | None = None
    #: The label's offset on ``labels``: with its ``event_time``, which label is the latest
    #: (stable on a replay, unlike arrival time; co-partitioning puts every label of a request
    #: on one partition).
    label_offset: int = -1
    #: When the record or the label last changed (seconds since the epoch): what expiry
    #: counts ``training.label_wait_s`` from.
    updated_at: float = 0.0
    written: str | None = Field(default=None, max_length=64)

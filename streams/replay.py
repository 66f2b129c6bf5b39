"""Re-drive dead-lettered records to their source topics (the ``caslie dlq replay`` command).

:func:`read_envelopes` reads the DLQ once to its end (a bounded read; repeats of one envelope,
same ``caslie-id``, are dropped); :func:`select` keeps the envelopes a :class:`Selection`
names; :func:`replay` produces each one's payload to the topic it came from, with its
original key, and a ``caslie-replayed-from`` header saying where it was dead-lettered. An
envelope whose payload was cut short cannot be replayed (:class:`NotReplayable`): raise
``dlq.payload_max_bytes`` for the next ones, or fix and produce that record by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pydantic import ValidationError

from schemas.dlq import DlqEnvelope
from streams.clients import make_producer
from streams.config import Settings
from streams.consume import consume_records
from streams.exceptions import StreamError
from streams.topics import logical_name

log = logging.getLogger(__name__)

REPLAY_HEADER = "caslie-replayed-from"
_FLUSH_S = 30.0


class NotReplayable(Exception):
    """Selected envelopes that cannot be replayed (payload truncated, foreign topic)."""


@dataclass(frozen=True)
class Selection:
    """Which envelopes to replay: every filter given must match (none given: all), the
    first ``max_records`` of them in log order."""

    request_ids: frozenset[str] = field(default_factory=frozenset)
    kinds: frozenset[str] = field(default_factory=frozenset)
    stages: frozenset[str] = field(default_factory=frozenset)
    #: Envelopes that failed at or after this time (seconds since the epoch).
    since: float | None = None
    max_records: int | None = None

    def matches(self, envelope: DlqEnvelope) -> bool:
        return (
            (not self.request_ids or envelope.request_id in self.request_ids)
            and (not self.kinds or envelope.error_kind.value in self.kinds)
            and (not self.stages or envelope.stage in self.stages)
            and (self.since is None or envelope.failed_at >= self.since)
        )


def read_envelopes(settings: Settings) -> Iterator[DlqEnvelope]:
    """Every envelope on the DLQ now (records that are not envelopes are logged, skipped)."""
    for value in consume_records(settings, "dlq", from_beginning=True, dedupe=True, to_end=True):
        try:
            yield DlqEnvelope.model_validate_json(value)
        except ValidationError as exc:
            log.warning("a DLQ record that is not an envelope skipped: %s", exc.errors()[0])


def select(envelopes: Iterable[DlqEnvelope], selection: Selection) -> list[DlqEnvelope]:
    chosen: list[DlqEnvelope] = []
    for envelope in envelopes:
        if selection.max_records is not None and len(chosen) >= selection.max_records:
            break
        if selection.matches(envelope):
            chosen.append(envelope)
    return chosen


def check_replayable(settings: Settings, envelopes: Iterable[DlqEnvelope]) -> None:
    """Raise :class:`NotReplayable` naming every envelope that cannot be replayed."""
    bad = []
    for e in envelopes:
        where = f"{e.topic}[{e.partition}]@{e.offset}"
        if e.payload_truncated:
            bad.append(f"{where} (payload truncated: {e.payload_bytes} bytes)")
            continue
        try:
            logical_name(settings, e.topic)
        except KeyError:
            bad.append(f"{where} (not a topic of this deployment's prefix)")
    if bad:
        raise NotReplayable(f"cannot replay {len(bad)} envelope(s): {', '.join(bad)}")


def replay(settings: Settings, envelopes: list[DlqEnvelope]) -> int:
    """Produce each envelope's payload to its source topic with its key; how many were
    delivered. Checks them all first (:func:`check_replayable`): nothing is produced when
    any cannot be replayed."""
    check_replayable(settings, envelopes)
    producer = make_producer(settings)
    errors: list[str] = []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    for e in envelopes:
        producer.produce(
            e.topic,
            key=e.key.encode() if e.key is not None else None,
            value=e.payload.encode(),
            headers=[(REPLAY_HEADER, f"{e.topic}:{e.partition}:{e.offset}".encode())],
            on_delivery=delivered,
        )
        producer.poll(0)
    left = producer.flush(_FLUSH_S)
    if left or errors:
        raise StreamError(
            f"{left + len(errors)} of {len(envelopes)} replayed records not delivered"
            + (f": {errors[0]}" if errors else "")
        )
    return len(envelopes)

"""The contract between the Kafka runner and a processing stage.

A stage receives a batch of decoded input records and returns, for each one, either the
records it produces or a :class:`Reject` that sends it to the DLQ. The runner owns Kafka:
batching, backpressure, delivery, DLQ and commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pydantic import BaseModel

from schemas.dlq import ErrorKind

if TYPE_CHECKING:
    from streams.dlq import Failure


@dataclass(frozen=True)
class Inbound:
    """One decoded input record and where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: BaseModel
    raw: bytes


@dataclass(frozen=True)
class Output:
    """A record to produce; ``dedupe_id`` goes into the ``caslie-id`` header."""

    logical_topic: str
    key: str
    value: BaseModel
    dedupe_id: str


@dataclass(frozen=True)
class Emit:
    outputs: list[Output] = field(default_factory=list)


@dataclass(frozen=True)
class Reject:
    kind: ErrorKind
    message: str


Result = Emit | Reject


def handle_each(
    batch: Sequence[Inbound], handle: Callable[[Inbound], Result], who: str
) -> list[Result]:
    """``handle`` each record on its own: one that raises is logged (``who`` failed on
    topic[partition]@offset) and rejected alone (DLQ, kind ``processing``), and never
    repeats the work of the records before it."""
    results: list[Result] = []
    for item in batch:
        try:
            results.append(handle(item))
        except Exception as exc:
            logging.getLogger(__name__).exception(
                "%s failed on %s[%d]@%d", who, item.topic, item.partition, item.offset
            )
            results.append(Reject(ErrorKind.PROCESSING, f"{type(exc).__name__}: {exc}"))
    return results


class FatalStageError(Exception):
    """The stage cannot go on (its model engine died, say): the worker exits non-zero and its
    supervisor restarts it. Nothing of the current batch is committed."""


class Stage(Protocol):
    """A processing step between two topics.

    ``process`` must return exactly one result per input, in order. It may raise: the runner
    then retries the records one by one to isolate the bad one, which goes to the DLQ with
    kind ``processing``. :class:`FatalStageError` stops the worker instead.
    """

    name: str

    @property
    def input_topics(self) -> tuple[str, ...]:
        """Logical topics it consumes (one consumer group for all of them)."""
        ...

    def process(self, batch: Sequence[Inbound]) -> Sequence[Result]: ...


@runtime_checkable
class WarmingStage(Protocol):
    """A stage that needs time before its first batch (the router restoring its tables).

    The runner waits for it before processing, while its poll thread keeps the group
    membership alive; the worker reports ready only once every such stage is."""

    def ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; ``True`` once ready. Raises if it never will be."""
        ...


@runtime_checkable
class FinishingStage(Protocol):
    """A stage that holds work across batches (the accumulator's rows not yet in a shard).

    ``finish`` is called once after its runner stopped cleanly, never after a failure: it
    writes what it holds. Anything it cannot finish must still be safe (committed state)."""

    def finish(self) -> None: ...


@runtime_checkable
class DeadLetterWatcher(Protocol):
    """A stage told of each of its input records the runner dead-letters (undecodable,
    invalid, rejected): the router remembers rejected products so their queries fail with
    the true reason."""

    def dead_lettered(self, logical_topic: str, failure: Failure) -> Sequence[Output]:
        """Records to produce with the envelope (in its transaction, exactly-once); must not
        raise."""
        ...

"""The public Python API of caslie-stream: the two jobs of a shop's code, producing events and
reading the answers, with the typed records of the contract (docs/events.md).

Everything a client needs is re-exported here (:data:`__all__`); the rest of the packages are
the service's own and may change.

Producing (validated, keyed by the topic's key field)::

    from caslie.client import EventProducer, ProductEvent, SAQuery

    with EventProducer("localhost:9092") as producer:
        producer.send(ProductEvent(product_id="p1", title="Steel mug"))
        producer.send(SAQuery(request_id="r1", task="SA", review="Lovely mug"))

Reading the answers (repeats dropped by their ``caslie-id`` header)::

    from caslie.client import Prediction, predictions

    for answer in predictions("localhost:9092", from_beginning=True, idle_timeout=30):
        if isinstance(answer, Prediction):
            print(answer.request_id, answer.label)
        else:  # a PredictionFailure: the query could not be answered
            print(answer.request_id, "failed at", answer.stage, answer.reason)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

from confluent_kafka import KafkaError, Message, Producer

from schemas.base import SCHEMA_VERSION, Record
from schemas.events import (
    AspectSchemaEvent,
    AspectSpec,
    ClaimEvent,
    ListingEvent,
    ProductEvent,
    Query,
    ReviewEvent,
    parse_query,
)
from schemas.images import ImageRef
from schemas.records import LabelEvent, Prediction, PredictionFailure, parse_prediction
from schemas.tasks.ae import AEQuery
from schemas.tasks.ap import APQuery
from schemas.tasks.cc import CCQuery
from schemas.tasks.dd import DDQuery
from schemas.tasks.lg import LGQuery
from schemas.tasks.mpc import MPCQuery
from schemas.tasks.pm import PMQuery
from schemas.tasks.prp import PRPQuery
from schemas.tasks.psi import PSIQuery
from schemas.tasks.sa import SAQuery
from schemas.tasks.sr import SRQuery
from streams.config import Settings, load_settings
from streams.produce import KeyMismatch, ProduceError, produce_event

__all__ = [
    "SCHEMA_VERSION",
    "AEQuery",
    "APQuery",
    "AspectSchemaEvent",
    "AspectSpec",
    "CCQuery",
    "ClaimEvent",
    "DDQuery",
    "EventProducer",
    "ImageRef",
    "KeyMismatch",
    "LGQuery",
    "LabelEvent",
    "ListingEvent",
    "MPCQuery",
    "PMQuery",
    "PRPQuery",
    "PSIQuery",
    "Prediction",
    "PredictionFailure",
    "ProduceError",
    "ProductEvent",
    "Query",
    "ReviewEvent",
    "SAQuery",
    "SRQuery",
    "Settings",
    "load_settings",
    "parse_prediction",
    "parse_query",
    "predictions",
    "topic_of",
]

#: The topic each kind of event goes to (a query of any task: ``queries``).
_TOPICS: tuple[tuple[type[Record], str], ...] = (
    (ProductEvent, "catalog"),
    (ReviewEvent, "reviews"),
    (ClaimEvent, "claims"),
    (ListingEvent, "listings"),
    (AspectSchemaEvent, "aspect_schemas"),
    (Query, "queries"),
    (LabelEvent, "labels"),
)


def topic_of(event: Record) -> str:
    """The logical topic of an event (``catalog`` for a :class:`ProductEvent` ...);
    ``TypeError`` for a record that users do not produce."""
    for kind, topic in _TOPICS:
        if isinstance(event, kind):
            return topic
    raise TypeError(f"{type(event).__name__} is not an event a client produces")


def _settings(target: Settings | str) -> Settings:
    """Settings as given, or the defaults (env, ``CASLIE_CONFIG``) with these bootstrap
    servers."""
    return target if isinstance(target, Settings) else load_settings(bootstrap_servers=target)


class EventProducer:
    """Sends events to their topics, validated and keyed by the topic's key field.

    ``send`` validates the event again as its topic's model (a dict must name its ``topic``)
    and raises ``pydantic.ValidationError`` or :class:`KeyMismatch` (a ``key`` given that is
    not the event's key) before anything is sent; delivery is asynchronous and
    :meth:`flush` (or leaving the ``with`` block) raises :class:`ProduceError` if some event
    was not delivered. ``producer`` replaces the confluent-kafka producer (tests).

    >>> with EventProducer("localhost:9092") as p:  # doctest: +SKIP
    ...     p.send(ProductEvent(product_id="p1", title="Steel mug"))
    """

    def __init__(self, target: Settings | str, producer: Producer | None = None) -> None:
        from streams.clients import make_producer

        self.settings = _settings(target)
        self._producer = producer if producer is not None else make_producer(self.settings)
        self._errors: list[str] = []
        self._lock = threading.Lock()

    def send(
        self, event: Record | dict[str, Any], key: str | None = None, topic: str | None = None
    ) -> None:
        """Validate and produce one event (its topic: :func:`topic_of`, or ``topic`` for a
        dict)."""
        if isinstance(event, Record):
            logical = topic or topic_of(event)
            value = event.model_dump(mode="json", exclude_none=True)
        elif topic is None:
            raise TypeError("a dict event needs its topic (topic='catalog', ...)")
        else:
            logical, value = topic, event
        while True:
            try:
                produce_event(self._producer, self.settings, logical, value, key, self._delivered)
                break
            except BufferError:
                self._producer.poll(0.1)
        self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for every event sent so far; :class:`ProduceError` if some were not
        delivered."""
        left = self._producer.flush(timeout)
        with self._lock:
            errors, self._errors = self._errors, []
        if errors or left:
            raise ProduceError(
                f"{len(errors) + left} events not delivered: {errors[:1] or 'timed out'}"
            )

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            with self._lock:
                self._errors.append(str(err))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.flush()


def predictions(
    target: Settings | str,
    from_beginning: bool = False,
    idle_timeout: float | None = None,
    max_records: int | None = None,
    stop: threading.Event | None = None,
) -> Iterator[Prediction | PredictionFailure]:
    """The answers on ``predictions`` (every partition, no consumer group), each once
    (repeats carry the same ``caslie-id`` header and are dropped), typed by
    :func:`parse_prediction`. Stops after ``max_records``, ``idle_timeout`` seconds without
    one, or when ``stop`` is set.

    >>> for answer in predictions("localhost:9092", idle_timeout=10):  # doctest: +SKIP
    ...     print(answer.request_id, answer.status)
    """
    from streams.consume import consume_records

    for raw in consume_records(
        _settings(target),
        "predictions",
        max_records=max_records,
        idle_timeout=idle_timeout,
        from_beginning=from_beginning,
        dedupe=True,
        stop=stop,
    ):
        yield parse_prediction(raw)

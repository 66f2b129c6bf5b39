"""The public API (caslie.client): the producer validates and keys events (its confluent-kafka
producer is a recording stand-in), the reader types answers (its record source is stubbed);
the round trip on Apache Kafka is at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

import caslie.client as client
from caslie.client import (
    EventProducer,
    KeyMismatch,
    LabelEvent,
    Prediction,
    PredictionFailure,
    ProduceError,
    ProductEvent,
    SAQuery,
    Settings,
    predictions,
    topic_of,
)

Callback = Callable[[Any, Any], None] | None


class RecordingProducer:
    """Stands in for ``confluent_kafka.Producer``; ``fail`` names keys whose delivery fails."""

    def __init__(self, fail: frozenset[bytes] = frozenset()) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.pending: list[tuple[Callback, bytes | None]] = []
        self.fail = fail

    def produce(
        self, topic: str, key: bytes | None = None, value: bytes = b"", on_delivery: Callback = None
    ) -> None:
        self.sent.append((topic, key, value))
        self.pending.append((on_delivery, key))

    def poll(self, _timeout: float = 0) -> int:
        return 0

    def flush(self, _timeout: float = 0) -> int:
        for callback, key in self.pending:
            if callback is not None:
                callback("broker said no" if key in self.fail else None, None)
        self.pending.clear()
        return 0


def _producer(fail: frozenset[bytes] = frozenset()) -> tuple[EventProducer, RecordingProducer]:
    fake = RecordingProducer(fail)
    return EventProducer(Settings(topic_prefix="t."), producer=fake), fake  # type: ignore[arg-type]


def test_every_public_name_is_exported() -> None:
    assert sorted(client.__all__) == sorted(set(client.__all__))
    for name in client.__all__:
        assert getattr(client, name) is not None


def test_events_go_to_their_topics_keyed_by_their_key_field() -> None:
    producer, fake = _producer()
    with producer:
        producer.send(ProductEvent(product_id="p1", title="Steel mug"))
        producer.send(SAQuery(request_id="r1", task="SA", review="Lovely"))
        producer.send(LabelEvent(request_id="r1", task="SA", label="A"), key="r1")
        producer.send({"review_id": "v1", "product_id": "p1", "text": "ok"}, topic="reviews")
    assert [(topic, key) for topic, key, _ in fake.sent] == [
        ("t.catalog", b"p1"),
        ("t.queries", b"r1"),
        ("t.labels", b"r1"),
        ("t.reviews", b"p1"),
    ]
    assert orjson.loads(fake.sent[1][2]) == {
        "version": 1,
        "request_id": "r1",
        "task": "SA",
        "review": "Lovely",
        "images": [],
    }


def test_nothing_is_sent_for_a_wrong_key_a_bad_event_or_an_unknown_kind() -> None:
    producer, fake = _producer()
    with pytest.raises(KeyMismatch, match="keyed by product_id"):
        producer.send(ProductEvent(product_id="p1", title="Mug"), key="p2")
    with pytest.raises(ValidationError):
        producer.send({"product_id": "p1"}, topic="catalog")
    with pytest.raises(TypeError, match="needs its topic"):
        producer.send({"product_id": "p1", "title": "Mug"})
    with pytest.raises(TypeError, match="not an event"):
        topic_of(Prediction(request_id="r", task="SA", label="A", adapter="base"))
    assert fake.sent == []


def test_undelivered_events_fail_the_flush() -> None:
    producer, _ = _producer(fail=frozenset({b"p2"}))
    producer.send(ProductEvent(product_id="p1", title="Mug"))
    producer.send(ProductEvent(product_id="p2", title="Cup"))
    with pytest.raises(ProduceError, match="1 events not delivered: \\['broker said no'\\]"):
        producer.flush()


def test_predictions_are_typed_answers_or_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    ok = {"request_id": "r1", "task": "SA", "label": "A", "adapter": "base"}
    failed = {
        "request_id": "r2",
        "task": "PSI",
        "status": "failed",
        "stage": "router",
        "error_kind": "unknown_product",
        "reason": "unknown product(s): k2",
        "failed_at": 1.0,
    }
    asked: dict[str, Any] = {}

    def records(settings: Settings, topic: str, **options: Any) -> Iterator[bytes]:
        asked.update(options, topic=topic, bootstrap=settings.bootstrap_servers)
        yield from (orjson.dumps(ok), orjson.dumps(failed))

    monkeypatch.setattr("streams.consume.consume_records", records)
    first, second = predictions("kafka.example:9092", idle_timeout=5)
    assert isinstance(first, Prediction) and first.label == "A"
    assert isinstance(second, PredictionFailure) and second.reason == "unknown product(s): k2"
    assert asked["topic"] == "predictions" and asked["dedupe"] is True
    assert asked["bootstrap"] == "kafka.example:9092"


@pytest.mark.kafka
def test_round_trip_on_apache_kafka(kafka_bootstrap: str) -> None:
    """Events sent by the API arrive keyed and whole; answers read back are typed."""
    from confluent_kafka import Consumer

    from streams.clients import create_topics
    from streams.runner import DEDUPE_HEADER

    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix="api.")
    create_topics(settings)
    with EventProducer(settings) as producer:
        producer.send(ProductEvent(product_id="p1", title="Steel mug"))
    consumer = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": "api", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe(["api.catalog"])
    msg = None
    for _ in range(60):
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            break
    consumer.close()
    assert msg is not None and msg.key() == b"p1"
    assert ProductEvent.from_json(msg.value() or b"").title == "Steel mug"

    from confluent_kafka import Producer

    answer = Prediction(request_id="r1", task="SA", label="A", adapter="base").to_json()
    raw = Producer({"bootstrap.servers": kafka_bootstrap})
    for _ in range(2):  # a redelivery: same caslie-id header
        raw.produce("api.predictions", key=b"r1", value=answer, headers=[(DEDUPE_HEADER, b"r1:p")])
    raw.flush(10)
    got = list(predictions(settings, from_beginning=True, idle_timeout=5))
    assert [(a.request_id, a.status) for a in got] == [("r1", "ok")]

"""Reading a topic (``streams.consume``) on Apache Kafka: a bounded read ends at the end
offsets it found, however fast new records arrive, and over transaction markers."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import Producer

from streams.clients import make_producer
from streams.config import Settings
from streams.consume import consume_records
from streams.topics import topic_name

pytestmark = pytest.mark.kafka


def test_a_bounded_read_ends_at_the_start_offsets_while_records_keep_coming(
    kafka_settings: Settings,
) -> None:
    name = topic_name(kafka_settings, "labels")
    producer = make_producer(kafka_settings)
    for i in range(40):
        producer.produce(name, key=f"k{i}".encode(), value=f"old-{i}".encode())
    assert producer.flush(30) == 0
    stop = threading.Event()

    def keep_producing() -> None:
        n = 0
        while not stop.is_set():
            producer.produce(name, key=f"n{n}".encode(), value=f"new-{n}".encode())
            producer.poll(0)
            n += 1
            stop.wait(0.005)
        producer.flush(30)

    writer = threading.Thread(target=keep_producing)
    writer.start()
    try:
        values = list(consume_records(kafka_settings, "labels", from_beginning=True, to_end=True))
    finally:
        stop.set()
        writer.join(30)
    old = [v for v in values if v.startswith(b"old-")]
    assert sorted(old) == sorted(f"old-{i}".encode() for i in range(40))
    assert len(values) < 40 + 400  # it did not follow the stream (~200 records a second)


def test_a_bounded_read_of_transactional_records_ends_after_the_commit_marker(
    kafka_settings: Settings,
) -> None:
    name = topic_name(kafka_settings, "enriched")
    producer = Producer(
        {"bootstrap.servers": kafka_settings.bootstrap_servers, "transactional.id": name}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    for i in range(10):
        producer.produce(name, key=f"k{i}".encode(), value=f"v{i}".encode())
    producer.commit_transaction(30)
    values = list(
        consume_records(
            kafka_settings, "enriched", from_beginning=True, to_end=True, idle_timeout=60
        )
    )
    assert sorted(values) == sorted(f"v{i}".encode() for i in range(10))


def test_a_bounded_read_of_an_empty_topic_ends_at_once(kafka_settings: Settings) -> None:
    assert list(consume_records(kafka_settings, "claims", from_beginning=True, to_end=True)) == []

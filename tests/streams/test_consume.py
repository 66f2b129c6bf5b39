"""Reading a topic (``streams.consume``) on Apache Kafka: a bounded read ends at the end
offsets it found, however fast new records arrive, and over transaction markers."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import Producer

from streams.clients import make_producer
from streams.config import Settings
from streams.consume import consume_messages, consume_records
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


def test_a_group_read_resumes_after_what_the_group_committed(kafka_settings: Settings) -> None:
    name = topic_name(kafka_settings, "labels")
    producer = make_producer(kafka_settings)
    for i in range(5):
        producer.produce(name, key=b"k", value=f"v{i}".encode())  # one key: one partition, in order
    assert producer.flush(30) == 0

    def read(count: int, group: str) -> list[bytes]:
        return [
            msg.value() or b""
            for msg in consume_messages(
                kafka_settings, "labels", count, 20, from_beginning=True, group=group
            )
        ]

    assert read(2, "g1") == [b"v0", b"v1"]
    assert read(2, "g1") == [b"v2", b"v3"]  # committed: the group goes on
    assert read(1, "g2") == [b"v0"]  # another group starts over


def test_a_group_read_cannot_be_bounded_by_end_offsets(kafka_settings: Settings) -> None:
    with pytest.raises(ValueError, match="direct assignment"):
        next(consume_messages(kafka_settings, "labels", to_end=True, group="g"))

"""The confluent-kafka stage runner against a real Apache Kafka broker."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from confluent_kafka import TopicPartition

from streams.clients import make_consumer, make_producer
from streams.config import DlqSettings, Settings
from streams.exceptions import DlqLimitExceeded
from streams.runner import StageRunner
from streams.stage import FatalStageError
from streams.topics import topic_name
from tests.support.runner import (
    CopyStage,
    collect_in_background,
    committed_total,
    produce_requests,
    read_topic,
    request_bytes,
    run_runner,
)

pytestmark = pytest.mark.kafka


def test_outputs_dlq_and_commits(kafka_settings: Settings) -> None:
    good = [f"ok-{i}" for i in range(30)]
    values = [request_bytes(r) for r in good[:10]] + [b"\xff garbage", b'{"request_id": "x"}']
    values += [request_bytes("reject-1"), request_bytes("boom")] + [
        request_bytes(r) for r in good[10:]
    ]
    produce_requests(kafka_settings, values)

    stage = CopyStage()
    runner = StageRunner(stage, kafka_settings, group_id="g-copy")
    done = threading.Event()
    captioned = []

    def collect() -> None:
        captioned.extend(read_topic(kafka_settings, "captioned", len(good)))
        time.sleep(1.5)  # let a commit interval pass
        done.set()

    threading.Thread(target=collect).start()
    assert run_runner(runner, done) is None
    assert sorted(r["request_id"] for r in captioned) == sorted(good)
    dlq = read_topic(kafka_settings, "dlq", 4)
    kinds = sorted(e["error_kind"] for e in dlq)
    assert kinds == ["processing", "processing", "schema", "undecodable"]
    boom = next(e for e in dlq if "boom" in e["payload"])
    assert "ValueError: boom in the model" in boom["message"]
    assert all(e["stage"] == "copy" and e["topic"].endswith("requests") for e in dlq)
    assert committed_total(kafka_settings, "g-copy") == len(values)


def test_garbage_only_input_stops_at_the_dlq_limit(kafka_settings: Settings) -> None:
    settings = kafka_settings.model_copy(
        update={"dlq": DlqSettings(max_consecutive=5, window=1000), "partitions": 1}
    )
    producer = make_producer(settings)
    for i in range(20):
        producer.produce(topic_name(settings, "requests"), value=b"garbage %d" % i, partition=0)
    producer.flush(30)
    runner = StageRunner(CopyStage(), settings, group_id="g-garbage")
    error = run_runner(runner, timeout=60)
    assert isinstance(error, DlqLimitExceeded)
    assert "5 invalid records in a row" in str(error)
    # four went to the DLQ and were committed; the fifth and the rest wait on the topic
    assert len(read_topic(settings, "dlq", 4)) == 4
    consumer = make_consumer(settings, "g-garbage")
    [tp] = consumer.committed([TopicPartition(topic_name(settings, "requests"), 0)], timeout=10)
    consumer.close()
    assert tp.offset == 4


def test_backpressure_pauses_but_keeps_polling(
    kafka_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = kafka_settings.model_copy(
        update={
            "batch": kafka_settings.batch.model_copy(
                update={"max_in_flight": 8, "max_batch": 4, "max_wait_ms": 10}
            )
        }
    )
    ids = [f"bp-{i}" for i in range(60)]
    produce_requests(settings, [request_bytes(r) for r in ids])
    stage = CopyStage(delay=0.05)
    runner = StageRunner(stage, settings, group_id="g-bp")
    out, done = collect_in_background(settings, "captioned", len(ids))
    with caplog.at_level(logging.INFO, logger="streams.runner"):
        assert run_runner(runner, done, timeout=120) is None
    assert sorted(r["request_id"] for r in out) == sorted(ids)
    assert any("paused" in r.getMessage() for r in caplog.records)
    assert any("resumed" in r.getMessage() for r in caplog.records)
    assert max(stage.batches) <= 4


def test_a_dead_model_engine_stops_the_worker_uncommitted(kafka_settings: Settings) -> None:
    settings = kafka_settings.model_copy(update={"partitions": 1})
    producer = make_producer(settings)
    for value in [request_bytes("fine-1"), request_bytes("oom"), request_bytes("fine-2")]:
        producer.produce(topic_name(settings, "requests"), value=value, partition=0)
    assert producer.flush(30) == 0
    error = run_runner(StageRunner(CopyStage(), settings, group_id="g-oom"), timeout=60)
    assert isinstance(error, FatalStageError)
    assert "RuntimeError: CUDA out of memory" in str(error)
    consumer = make_consumer(settings, "g-oom")
    [tp] = consumer.committed([TopicPartition(topic_name(settings, "requests"), 0)], timeout=10)
    consumer.close()
    assert tp.offset < 2, "the failed record and those after it stay uncommitted"
    assert read_topic(settings, "dlq", 1) == [], "nothing was dead-lettered"

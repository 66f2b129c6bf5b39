"""``caslie status`` against a real Apache Kafka broker and a worker's metrics endpoint."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest
from confluent_kafka import TopicPartition

from caslie.status import snapshot, with_rates
from streams import metrics
from streams.broker import free_port
from streams.clients import create_topics, make_consumer, make_producer, wait_for_broker
from streams.config import Settings
from streams.health import Health, serve
from streams.topics import topic_name

pytestmark = pytest.mark.kafka


def _produce(settings: Settings, logical: str, count: int) -> None:
    producer = make_producer(settings)
    for i in range(count):
        producer.produce(topic_name(settings, logical), key=str(i).encode(), value=b"{}")
    assert producer.flush(30) == 0


def _commit(settings: Settings, group: str, logical: str, upto: int) -> None:
    """The group commits position ``upto`` of the (single) partition."""
    consumer = make_consumer(settings, group, **{"enable.auto.commit": False})
    try:
        consumer.commit(
            offsets=[TopicPartition(topic_name(settings, logical), 0, upto)], asynchronous=False
        )
    finally:
        consumer.close()


def test_lag_throughput_and_dlq_counts(kafka_settings: Settings) -> None:
    one = kafka_settings.model_copy(
        update={"partitions": 1, "topic_prefix": kafka_settings.topic_prefix + "one."}
    )
    create_topics(one)  # single-partition topics: offsets are easy to reason about
    wait_for_broker(one)
    _produce(one, "requests", 10)
    _produce(one, "dlq", 3)
    _commit(one, f"{one.topic_prefix}captioner", "requests", 4)

    metrics.DLQ_RECORDS.labels("voter", "schema").inc(2)
    server = serve(Health(lambda: None), free_port())
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        first = snapshot(one, [url])
        _commit(one, f"{one.topic_prefix}captioner", "requests", 10)
        second = with_rates(snapshot(one, [url]), first)
    finally:
        server.shutdown()

    by_stage = {s.stage: s for s in first.stages}
    assert by_stage["captioner"].committed == 4 and by_stage["captioner"].lag == 6
    assert by_stage["voter"].lag == 0 and by_stage["predictor"].committed == 0
    assert by_stage["voter"].dlq["schema"] >= 2
    assert first.dlq_topic_records == 3
    after = {s.stage: s for s in second.stages}
    assert after["captioner"].lag == 0
    rate = after["captioner"].records_per_s
    assert rate is not None and rate > 0


def test_status_command_prints_json(kafka_settings: Settings, kafka_env: dict[str, str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "caslie", "status", "--json", "--interval", "0.5"],
        env=kafka_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    snap = orjson.loads(out.stdout)
    stages = [s["stage"] for s in snap["stages"]]
    assert stages == ["router", "router.waiting", "captioner", "voter", "predictor"]
    assert all(s["records_per_s"] == 0 for s in snap["stages"])


def test_status_without_a_broker_exits_4() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "caslie", "-b", f"127.0.0.1:{free_port()}", "status", "--once"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 4

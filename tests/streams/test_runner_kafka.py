"""The confluent-kafka stage runner against a real Apache Kafka broker."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from schemas import CaptionedRecord, TaskRequest
from schemas.dlq import ErrorKind
from streams.clients import make_consumer, make_producer
from streams.config import DlqSettings, Settings
from streams.consume import consume_records
from streams.exceptions import DlqLimitExceeded
from streams.runner import StageRunner
from streams.stage import Emit, Inbound, Output, Reject, Result
from streams.topics import topic_name

pytestmark = pytest.mark.kafka


class CopyStage:
    """requests -> captioned (no captions); ``reject*`` ids are rejected, ``boom`` raises."""

    name = "copy"
    input_topic = "requests"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.batches: list[int] = []

    def process(self, batch: Sequence[Inbound]) -> Sequence[Result]:
        self.batches.append(len(batch))
        time.sleep(self.delay)
        results: list[Result] = []
        for item in batch:
            request = item.value
            assert isinstance(request, TaskRequest)
            if request.request_id == "boom":
                raise ValueError("boom in the model")
            if request.request_id.startswith("reject"):
                results.append(Reject(ErrorKind.PROCESSING, "rejected by the stage"))
                continue
            out = CaptionedRecord.model_validate({**request.model_dump(), "captions": []})
            results.append(
                Emit([Output("captioned", request.request_id, out, f"{request.request_id}:copy")])
            )
        return results


def _request(rid: str) -> bytes:
    return TaskRequest(
        request_id=rid, task="SA", inputs={"review": "fine"}, options=["A: x", "B: y"]
    ).to_json()


def _produce(settings: Settings, values: list[bytes]) -> None:
    producer = make_producer(settings)
    for i, value in enumerate(values):
        producer.produce(topic_name(settings, "requests"), key=str(i).encode(), value=value)
    assert producer.flush(30) == 0


def _run(
    runner: StageRunner, until: threading.Event | None = None, timeout: float = 60
) -> BaseException | None:
    stop = until or threading.Event()
    error: list[BaseException] = []

    def target() -> None:
        try:
            runner.run(stop)
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        stop.set()
        thread.join(30)
    return error[0] if error else None


def _committed(settings: Settings, group: str) -> int:
    consumer: Consumer = make_consumer(settings, group)
    topic = topic_name(settings, "requests")
    parts = [TopicPartition(topic, p) for p in range(settings.partitions)]
    total = sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
    consumer.close()
    return total


def _read(settings: Settings, logical: str, n: int) -> list[dict]:
    return [
        orjson.loads(v)
        for v in consume_records(
            settings, logical, max_records=n, idle_timeout=20, from_beginning=True
        )
    ]


def test_outputs_dlq_and_commits(kafka_settings: Settings) -> None:
    good = [f"ok-{i}" for i in range(30)]
    values = [_request(r) for r in good[:10]] + [b"\xff garbage", b'{"request_id": "x"}']
    values += [_request("reject-1"), _request("boom")] + [_request(r) for r in good[10:]]
    _produce(kafka_settings, values)

    stage = CopyStage()
    runner = StageRunner(stage, kafka_settings, group_id="g-copy")
    done = threading.Event()
    captioned = []

    def collect() -> None:
        captioned.extend(_read(kafka_settings, "captioned", len(good)))
        time.sleep(1.5)  # let a commit interval pass
        done.set()

    threading.Thread(target=collect).start()
    assert _run(runner, done) is None
    assert sorted(r["request_id"] for r in captioned) == sorted(good)
    dlq = _read(kafka_settings, "dlq", 4)
    kinds = sorted(e["error_kind"] for e in dlq)
    assert kinds == ["processing", "processing", "schema", "undecodable"]
    boom = next(e for e in dlq if "boom" in e["payload"])
    assert "ValueError: boom in the model" in boom["message"]
    assert all(e["stage"] == "copy" and e["topic"].endswith("requests") for e in dlq)
    assert _committed(kafka_settings, "g-copy") == len(values)


def test_garbage_only_input_stops_at_the_dlq_limit(kafka_settings: Settings) -> None:
    settings = kafka_settings.model_copy(
        update={"dlq": DlqSettings(max_consecutive=5, window=1000), "partitions": 1}
    )
    producer = make_producer(settings)
    for i in range(20):
        producer.produce(topic_name(settings, "requests"), value=b"garbage %d" % i, partition=0)
    producer.flush(30)
    runner = StageRunner(CopyStage(), settings, group_id="g-garbage")
    error = _run(runner, timeout=60)
    assert isinstance(error, DlqLimitExceeded)
    assert "5 invalid records in a row" in str(error)
    # four went to the DLQ and were committed; the fifth and the rest wait on the topic
    assert len(_read(settings, "dlq", 4)) == 4
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
    _produce(settings, [_request(r) for r in ids])
    stage = CopyStage(delay=0.05)
    runner = StageRunner(stage, settings, group_id="g-bp")
    done = threading.Event()
    out: list[dict] = []

    def collect() -> None:
        out.extend(_read(settings, "captioned", len(ids)))
        done.set()

    threading.Thread(target=collect).start()
    with caplog.at_level(logging.INFO, logger="streams.runner"):
        assert _run(runner, done, timeout=120) is None
    assert sorted(r["request_id"] for r in out) == sorted(ids)
    assert any("paused" in r.getMessage() for r in caplog.records)
    assert any("resumed" in r.getMessage() for r in caplog.records)
    assert max(stage.batches) <= 4

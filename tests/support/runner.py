"""A copy stage and helpers for runner tests against a real broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from schemas import CaptionedRecord, TaskRequest
from schemas.dlq import ErrorKind
from streams.clients import make_consumer, make_producer
from streams.config import Settings
from streams.consume import consume_records
from streams.runner import StageRunner
from streams.stage import Emit, Inbound, Output, Reject, Result
from streams.topics import topic_name
from workers.engine import engine_failed


class CopyStage:
    """requests -> captioned (no captions); ``reject*`` ids are rejected, ``boom`` raises,
    ``oom`` fails like a model engine out of device memory."""

    name = "copy"
    input_topics = ("requests",)
    is_fatal = staticmethod(engine_failed)

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
            if request.request_id == "oom":
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            if request.request_id.startswith("reject"):
                results.append(Reject(ErrorKind.PROCESSING, "rejected by the stage"))
                continue
            out = CaptionedRecord.model_validate({**request.model_dump(), "captions": []})
            results.append(
                Emit([Output("captioned", request.request_id, out, f"{request.request_id}:copy")])
            )
        return results


def request_bytes(rid: str) -> bytes:
    return TaskRequest(
        request_id=rid, task="SA", inputs={"review": "fine"}, options=["A: x", "B: y"]
    ).to_json()


def produce_requests(settings: Settings, values: list[bytes]) -> None:
    producer = make_producer(settings)
    for i, value in enumerate(values):
        producer.produce(topic_name(settings, "requests"), key=str(i).encode(), value=value)
    assert producer.flush(30) == 0


def collect_in_background(
    settings: Settings, logical: str, n: int
) -> tuple[list[dict[str, Any]], threading.Event]:
    """Read ``n`` records of ``logical`` (read_committed) in a thread: the list fills, and the
    event is set once they are read (or the read gave up)."""
    records: list[dict[str, Any]] = []
    done = threading.Event()

    def collect() -> None:
        records.extend(read_topic(settings, logical, n))
        done.set()

    threading.Thread(target=collect, daemon=True).start()
    return records, done


def run_runner(
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


def committed_total(settings: Settings, group: str) -> int:
    consumer: Consumer = make_consumer(settings, group)
    topic = topic_name(settings, "requests")
    parts = [TopicPartition(topic, p) for p in range(settings.partitions)]
    total = sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
    consumer.close()
    return total


def read_topic(settings: Settings, logical: str, n: int) -> list[dict]:
    return [
        orjson.loads(v)
        for v in consume_records(
            settings, logical, max_records=n, idle_timeout=20, from_beginning=True
        )
    ]

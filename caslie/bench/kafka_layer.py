"""The Kafka layer alone: records per second through produce + decode/validate + consume +
commit (the worker runner with a stage that does nothing), per topic and record size."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel

from streams.clients import make_producer
from streams.codec import encode
from streams.config import Settings
from streams.runner import StageRunner
from streams.stage import Emit, Inbound, Result
from streams.topics import topic_name


class CountingStage:
    """Accepts every record and produces nothing; notes when records arrive."""

    def __init__(self, logical_topic: str) -> None:
        self.name = f"bench-{logical_topic}"
        self.input_topics = (logical_topic,)
        self.count = 0
        self.first: float | None = None
        self.last = 0.0

    def process(self, batch: Sequence[Inbound]) -> Sequence[Result]:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.count += len(batch)
        results = [Emit() for _ in batch]
        self.last = time.perf_counter()  # when the batch was done
        return results


@contextlib.contextmanager
def running(runner: StageRunner, name: str) -> Iterator[list[BaseException]]:
    """Run ``runner`` in a thread for the block; its error, if any, is raised after it."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            runner.run(stop)
        except BaseException as exc:  # raised below
            errors.append(exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield errors
    finally:
        stop.set()
        thread.join(60)
    if errors:
        raise errors[0]


def _wait(stage: CountingStage, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while stage.count < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{stage.name}: {stage.count} of {count} records after {timeout}s")
        time.sleep(0.01)


def measure_topic(
    settings: Settings, logical: str, record: BaseModel, count: int, timeout: float = 120
) -> dict[str, Any]:
    value = encode(record)
    stage = CountingStage(logical)
    producer = make_producer(settings)
    name = topic_name(settings, logical)
    with running(StageRunner(stage, settings), f"bench-{logical}"):
        producer.produce(name, key=b"warm-up", value=value)  # group joined once this is seen
        producer.flush(30)
        _wait(stage, 1, timeout)
        began = time.perf_counter()
        for i in range(count):
            producer.produce(name, key=str(i).encode(), value=value)
            producer.poll(0)
        producer.flush(60)
        produced = time.perf_counter() - began
        _wait(stage, count + 1, timeout)
        seconds = stage.last - began
    return {
        "topic": logical,
        "record_bytes": len(value),
        "records": count,
        "produce_records_per_s": count / produced,
        "end_to_end_records_per_s": count / seconds,
        "end_to_end_mb_per_s": count * len(value) / seconds / 1e6,
    }


def measure(settings: Settings, samples: dict[str, BaseModel], count: int) -> list[dict[str, Any]]:
    return [measure_topic(settings, logical, record, count) for logical, record in samples.items()]

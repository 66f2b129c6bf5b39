"""The runner against the client's own speed: a stage that does nothing, run by
:class:`~streams.runner.StageRunner`, next to a bare confluent-kafka loop (``consume(1000)``,
decode and validate each record with :func:`streams.codec.decode`, commit per batch) on the
same broker, the same records and in the same invocation, per record kind. The ratio is the
figure to read: these machines are shared and noisy.

Both sides read a topic that was filled beforehand, from the first record they see to the
last, so the producer's speed is not part of either figure."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import TopicPartition
from pydantic import BaseModel

from caslie.bench.kafka_layer import CountingStage, running
from streams.clients import create_topics, make_consumer, make_producer
from streams.codec import decode, encode
from streams.config import BatchSettings, Settings
from streams.runner import StageRunner
from streams.topics import topic_name

#: Batching for the no-op stage: what the router uses (see ``Settings.stage_batch``).
BATCH = BatchSettings(max_batch=1000, max_wait_ms=5, max_in_flight=20_000)


def _fill(settings: Settings, logical: str, value: bytes, count: int) -> None:
    producer = make_producer(settings, **{"linger.ms": 20})
    topic = topic_name(settings, logical)
    for i in range(count):
        while True:
            try:
                producer.produce(topic, key=str(i).encode(), value=value)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120) != 0:
        raise TimeoutError(f"{count} records were not produced to {topic} within 120 s")


def bare_loop(settings: Settings, logical: str, count: int, timeout: float) -> float:
    """Records per second of consume(1000) + decode/validate + a commit per batch."""
    consumer = make_consumer(settings, f"{settings.topic_prefix}bare")
    consumer.subscribe([topic_name(settings, logical)])
    seen = 0
    began: float | None = None
    deadline = time.monotonic() + timeout
    try:
        while seen < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"bare loop: {seen} of {count} records after {timeout} s")
            messages = consumer.consume(num_messages=1000, timeout=0.1)
            if not messages:
                continue
            if began is None:
                began = time.perf_counter()
            positions: dict[tuple[str, int], int] = {}
            for msg in messages:
                if msg.error() is not None:
                    continue
                decode(msg.value(), logical)
                positions[(msg.topic(), msg.partition())] = msg.offset() + 1  # type: ignore[index,operator]
                seen += 1
            consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in positions.items()],
                asynchronous=False,
            )
        assert began is not None
        return count / (time.perf_counter() - began)
    finally:
        consumer.close()


def runner_loop(settings: Settings, logical: str, count: int, timeout: float) -> float:
    """Records per second through the runner with a stage that produces nothing."""
    stage = CountingStage(logical)
    settings = settings.model_copy(update={"stage_batch": {stage.name: BATCH}})
    with running(StageRunner(stage, settings), f"ceiling-{logical}") as errors:
        deadline = time.monotonic() + timeout
        while stage.count < count and not errors:
            if time.monotonic() > deadline:
                raise TimeoutError(f"runner: {stage.count} of {count} records after {timeout} s")
            time.sleep(0.01)
    assert stage.first is not None  # from the first batch's start to the last one's end,
    return count / (stage.last - stage.first)  # as the bare loop is timed


def measure(
    settings: Settings, samples: dict[str, BaseModel], count: int, exactly_once: bool
) -> dict[str, Any]:
    """One row per record kind: bare loop, runner at-least-once (and exactly-once)."""
    rows = []
    modes = ["at_least_once", "exactly_once"] if exactly_once else ["at_least_once"]
    for logical, record in samples.items():
        value = encode(record)
        row: dict[str, Any] = {"topic": logical, "record_bytes": len(value), "records": count}
        for name in ["bare", *modes]:
            prefixed = settings.model_copy(
                update={
                    "topic_prefix": f"{settings.topic_prefix}ceil-{uuid.uuid4().hex[:6]}.",
                    "delivery": "exactly_once" if name == "exactly_once" else "at_least_once",
                    "instance_id": "ceiling",
                }
            )
            create_topics(prefixed)
            _fill(prefixed, logical, value, count)
            if name == "bare":
                row["bare_records_per_s"] = bare_loop(prefixed, logical, count, 120)
            else:
                row[f"runner_{name}_records_per_s"] = runner_loop(prefixed, logical, count, 120)
        for mode in modes:
            row[f"ratio_{mode}"] = row[f"runner_{mode}_records_per_s"] / row["bare_records_per_s"]
        rows.append(row)
    return {
        "batch": BATCH.model_dump(),
        "rows": rows,
        "goal": "runner >= 0.5 of the bare loop",
        "met": all(r[f"ratio_{m}"] >= 0.5 for r in rows for m in modes),
    }


def markdown(section: dict[str, Any]) -> list[str]:
    eos = any("ratio_exactly_once" in r for r in section["rows"])
    head = "| record | bytes | bare loop /s | runner at-least-once /s | ratio |"
    rule = "|---|---|---|---|---|"
    if eos:
        head += " runner exactly-once /s | ratio |"
        rule += "---|---|"
    lines = [
        "## The runner against the bare client",
        "",
        f"A stage that does nothing, batches of up to {section['batch']['max_batch']}, against "
        "consume(1000) + decode/validate + commit per batch, same broker and records.",
        "",
        head,
        rule,
    ]
    for r in section["rows"]:
        line = (
            f"| {r['topic']} | {r['record_bytes']} | {r['bare_records_per_s']:,.0f} | "
            f"{r['runner_at_least_once_records_per_s']:,.0f} | {r['ratio_at_least_once']:.2f} |"
        )
        if eos:
            line += (
                f" {r['runner_exactly_once_records_per_s']:,.0f} | {r['ratio_exactly_once']:.2f} |"
            )
        lines.append(line)
    lines += ["", f"Goal: {section['goal']}: {'met' if section['met'] else 'missed'}.", ""]
    return lines

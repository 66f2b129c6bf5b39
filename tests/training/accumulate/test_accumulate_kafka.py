"""``caslie dataset accumulate`` on Apache Kafka: bounded runs, a late relabel and a late
record, snapshots with the latest labels."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import pytest

from schemas.tasks.sa import SA_OPTIONS
from streams.artifacts import dataset_store_for
from streams.clients import make_producer
from streams.config import Settings, TrainingSettings
from streams.produce import produce_event
from training.accumulate.bounded import accumulate

pytestmark = pytest.mark.kafka


def _record(rid: str) -> dict[str, object]:
    return {"request_id": rid, "task": "SA", "inputs": {"review": rid}, "options": SA_OPTIONS}


def _send(settings: Settings, enriched: list[str], labels: list[tuple[str, str, float]]) -> None:
    producer = make_producer(settings)
    for rid in enriched:
        produce_event(producer, settings, "enriched", _record(rid))
    for rid, label, at in labels:
        event = {"request_id": rid, "task": "SA", "label": label, "event_time": at}
        produce_event(producer, settings, "labels", event)
    assert producer.flush(30) == 0


def test_bounded_runs_write_shards_and_a_snapshot_reads_the_latest_labels(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = kafka_settings.model_copy(
        update={
            "cache_dir": tmp_path / "cache",
            "training": TrainingSettings(dataset_store=str(tmp_path / "store"), shard_rows=1000),
        }
    )
    _send(settings, ["r1", "r2", "r3"], [("r1", "A", 1.0), ("r2", "B", 1.0), ("late", "A", 1.0)])
    first = accumulate(settings, threading.Event(), timeout_s=120)
    assert first.rows_written == 2 and first.records == 6
    dataset = dataset_store_for(settings)
    assert {r.request_id: r.label.label for r in dataset.read(dataset.snapshot())} == {
        "r1": "A",
        "r2": "B",
    }

    _send(settings, ["late"], [("r1", "C", 2.0), ("r2", "A", 0.5)])  # r2's is older
    second = accumulate(settings, threading.Event(), timeout_s=120)
    assert second.rows_written == 2  # r1 relabelled, the late record joined; r2 unchanged
    snapshot = dataset.snapshot()
    latest = {r.request_id: r.label.label for r in dataset.read(snapshot)}
    assert latest == {"r1": "C", "r2": "B", "late": "A"}
    assert len(snapshot.shards) == 2


def test_a_bounded_run_over_transactional_inputs_ends(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """Inputs written in exactly-once mode end each transaction with a commit marker, an offset
    no consumer is handed: the group's commit stays one below the end offset, and the run must
    still see that it has caught up."""
    from confluent_kafka import Producer

    from streams.topics import topic_name

    settings = kafka_settings.model_copy(
        update={
            "cache_dir": tmp_path / "cache",
            "training": TrainingSettings(dataset_store=str(tmp_path / "store")),
        }
    )
    producer = Producer(
        {"bootstrap.servers": settings.bootstrap_servers, "transactional.id": "tx-inputs"}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    for rid in ("t1", "t2"):
        record = _record(rid)
        label = {"request_id": rid, "task": "SA", "label": "B"}
        for logical, value in (("enriched", record), ("labels", label)):
            producer.produce(
                topic_name(settings, logical), key=rid.encode(), value=orjson.dumps(value)
            )
    producer.commit_transaction(30)
    done = accumulate(settings, threading.Event(), timeout_s=60)
    assert done.rows_written == 2

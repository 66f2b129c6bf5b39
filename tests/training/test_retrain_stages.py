"""The retrain stages by name: the three known ones, anything else refused; refinement of
the training split before them (``--refine``)."""

from __future__ import annotations

import types
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from streams.artifacts import Snapshot
from streams.config import Settings
from tests.training.test_refine import PUMPS
from training.dataset import InstructionExample
from training.retrain import STAGES, parse_stage


def test_the_known_stages_parse() -> None:
    assert [parse_stage(s) for s in ("sft", "dpo", "both")] == list(STAGES)


@pytest.mark.parametrize("bad", ["", "SFT", "ppo", "sft,dpo"])
def test_an_unknown_stage_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="stage must be one of sft, dpo, both"):
        parse_stage(bad)


class _Trained(Exception):
    """Stops the cycle once the trainer has its examples."""


def test_refinement_sees_the_training_split_only_and_the_trainer_its_output(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from training import retrain
    from training.refine import refine_examples

    examples = [replace(PUMPS, split=s, request_id=f"r-{s}") for s in ("train", "val", "test")]
    refined: list[list[InstructionExample]] = []
    trained: list[list[InstructionExample]] = []

    def spy(batch: list[InstructionExample]) -> object:
        refined.append(list(batch))
        return refine_examples(batch)

    def trainer(_lm: object, train: list[InstructionExample], *_: object, **__: object) -> Path:
        trained.append(train)
        raise _Trained

    registry = types.SimpleNamespace(current=lambda _name: None)
    models = types.SimpleNamespace(lm=None, scorer=None, extractor=None, describe=dict)
    snapshot = Snapshot("20260101T000000Z-00000000", "caslie", 0.0)
    monkeypatch.setattr(retrain, "_open_run", lambda *_a: (snapshot, False))
    monkeypatch.setattr(
        retrain, "dataset_store_for", lambda _s: types.SimpleNamespace(read=lambda _snap: [])
    )
    monkeypatch.setattr(retrain, "assemble", lambda *_a, **_k: examples)
    monkeypatch.setattr(retrain, "registry_for", lambda _s: registry)
    monkeypatch.setattr(retrain, "answerers", lambda _s: models)
    monkeypatch.setattr(retrain, "refine_examples", spy)
    monkeypatch.setattr(retrain, "train_lora", trainer)
    settings = Settings(training={"checkpoint_dir": str(tmp_path)})
    for refine in (False, True):
        with pytest.raises(_Trained):
            retrain.retrain_cycle(settings, "lg", progress=False, refine=refine)
    assert refined == [[examples[0]]]  # once, for --refine, and the train split alone
    unrefined, [example] = trained
    assert unrefined == [examples[0]]
    assert orjson.loads(example.output)["title"] == "NINE WEST Women's Black Leather Pumps"
    assert example.split == "train" and example.request_id == "r-train"


def test_the_summary_records_the_refinement() -> None:
    from training.gate import GateDecision
    from training.retrain import CycleResult, cycle_summary

    decision = GateDecision(promote=False, reason="r")
    summary: dict[str, object] = {"examples": 3, "unusable": 1}
    result = CycleResult(decision, {}, {}, "base", None, {}, refinement=summary)
    assert orjson.loads(cycle_summary(result))["refinement"] == summary
    assert orjson.loads(cycle_summary(replace(result, refinement={})))["refinement"] == {}

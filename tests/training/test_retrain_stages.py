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


def test_a_restarted_run_trains_on_its_own_snapshot_and_an_ended_one_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The run folder's run.json pins the snapshot: a cycle killed mid-training and started
    again trains on the rows it began with, although shards arrived since; a cycle that ends
    (here: its data refused) removes the folder, so the next one takes a new snapshot."""
    from schemas import EnrichedRecord, LabelEvent
    from schemas.tasks.sa import SA_OPTIONS
    from streams.artifacts import LabelledRecord, dataset_store_for
    from training import retrain
    from training.retrain import TrainingDataError, checkpoint_root, run_key

    settings = Settings(predictor={"registry": str(tmp_path / "registry")})
    assert checkpoint_root(settings) == tmp_path / "registry" / "checkpoints"
    assert run_key("g", epochs=1) == run_key("g", epochs=1) != run_key("g", epochs=2)

    def row(rid: str) -> LabelledRecord:
        record = EnrichedRecord.model_validate(
            {"request_id": rid, "task": "SA", "inputs": {"review": rid}, "options": SA_OPTIONS}
        )
        return LabelledRecord(record, LabelEvent(request_id=rid, task="SA", label="B"))

    store = dataset_store_for(settings)
    store.append([row("a")], at=0.0)
    seen: list[tuple[str, bool]] = []

    class Killed(BaseException):
        """The process died mid-training."""

    def cycle(*args: object) -> object:
        snap, folder = args[10], args[11]
        assert isinstance(snap, Snapshot) and isinstance(folder, Path)
        seen.append((snap.id, (folder / "run.json").is_file()))
        if len(seen) == 1:
            (folder / "sft" / "checkpoints").mkdir(parents=True)  # a checkpoint was saved
            raise Killed
        raise TrainingDataError("too little")

    monkeypatch.setattr(retrain, "_cycle", cycle)
    with pytest.raises(Killed):
        retrain.retrain_cycle(settings, "g", progress=False)
    store.append([row("b")], at=1.0)  # new data while the run was down
    with pytest.raises(TrainingDataError):
        retrain.retrain_cycle(settings, "g", progress=False)
    assert seen[0] == seen[1]  # the same snapshot, and the folder was there
    assert not list(checkpoint_root(settings).iterdir())  # ended: nothing left to resume
    with pytest.raises(TrainingDataError):
        retrain.retrain_cycle(settings, "g", progress=False)
    assert seen[2][0] != seen[0][0]  # a new snapshot, with b
    assert store.get(seen[2][0]).rows == 2


def test_a_torn_or_stale_run_marker_starts_afresh(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A marker that does not parse, names a snapshot that is gone, or differs from the
    --snapshot asked for does not wedge every later cycle: the run starts afresh."""
    from schemas import EnrichedRecord, LabelEvent
    from schemas.tasks.sa import SA_OPTIONS
    from streams.artifacts import LabelledRecord, dataset_store_for
    from training import retrain

    settings = Settings(predictor={"registry": str(tmp_path / "registry")})
    record = EnrichedRecord.model_validate(
        {"request_id": "a", "task": "SA", "inputs": {"review": "a"}, "options": SA_OPTIONS}
    )
    store = dataset_store_for(settings)
    store.append([LabelledRecord(record, LabelEvent(request_id="a", task="SA", label="B"))])
    first = store.snapshot()
    folder = tmp_path / "run"
    for torn in (b'{"snaps', b'{"snapshot": "20200101T000000Z-deadbeef"}'):
        folder.mkdir(exist_ok=True)
        (folder / "run.json").write_bytes(torn)
        (folder / "sft").mkdir(exist_ok=True)
        snap, resumed = retrain._open_run(settings, folder, "new")
        assert (snap.id, resumed) == (first.id, False)
        assert not (folder / "sft").exists()  # the old run's checkpoints went with it
    store.append([LabelledRecord(record, LabelEvent(request_id="a", task="SA", label="C"))])
    second = store.snapshot()
    snap, resumed = retrain._open_run(settings, folder, second.id)  # asked for another one
    assert (snap.id, resumed) == (second.id, False)
    snap, resumed = retrain._open_run(settings, folder, "new")  # a restart of that run
    assert (snap.id, resumed) == (second.id, True)

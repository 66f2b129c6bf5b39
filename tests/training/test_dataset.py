from __future__ import annotations

from pathlib import Path

import pytest

from schemas import EnrichedRecord, LabelEvent
from schemas.tasks.registry import get_task
from schemas.tasks.sa import SA_OPTIONS
from schemas.tasks.sample import CAPTION_KEY, OCR_KEY
from training.dataset import Captions, assemble, read_mmec, split_for, with_captions, write_mmec


def build_sample(request, kept):  # type: ignore[no-untyped-def]
    return get_task(request.task).assemble(request, kept)


def _enriched(rid: str, keep: bool = True, ocr: str | None = None) -> EnrichedRecord:
    return EnrichedRecord.model_validate(
        {
            "request_id": rid,
            "task": "SA",
            "inputs": {"review": f"review {rid}"},
            "options": list(SA_OPTIONS),
            "slots": [
                {
                    "slot": "review",
                    "image": {"url": "file:///r.png"},
                    "caption_vars": {"review": "r"},
                    "judge_vars": {"review": "r"},
                }
            ],
            "captions": [{"slot": "review", "text": "a smiling face", "ocr_tokens": ocr}],
            "verdicts": [{"slot": "review", "keep": keep, "mode": "mv"}],
        }
    )


def test_join_latest_label_wins_and_skips_unlabelled_and_duplicates() -> None:
    records = [_enriched("a"), _enriched("a"), _enriched("b"), _enriched("c")]
    labels = [
        LabelEvent(request_id="a", task="SA", label="E", event_time=1.0),
        LabelEvent(request_id="a", task="SA", label="B", event_time=2.0),
        LabelEvent(request_id="b", task="SA", label="Z"),  # not a legal answer
    ]
    examples = assemble(records, labels)
    assert [(e.request_id, e.output) for e in examples] == [("a", "B: positive")]


def test_training_and_serving_prompts_are_the_same() -> None:
    record = _enriched("x")
    [example] = assemble([record], [LabelEvent(request_id="x", task="SA", label="A")])
    served = build_sample(record, {"review": "a smiling face"}).user_message()
    assert example.sample().user_message() == served
    assert CAPTION_KEY in example.input
    [dropped] = assemble(
        [_enriched("y", keep=False)], [LabelEvent(request_id="y", task="SA", label="A")]
    )
    assert CAPTION_KEY not in dropped.input


def test_split_is_deterministic_and_roughly_proportional() -> None:
    splits = [split_for(f"req-{i}") for i in range(5000)]
    assert splits == [split_for(f"req-{i}") for i in range(5000)]
    assert 0.07 < splits.count("test") / 5000 < 0.13
    assert 0.07 < splits.count("val") / 5000 < 0.13


def test_mmecinstruct_round_trip(tmp_path: Path) -> None:
    examples = assemble(
        [_enriched(str(i)) for i in range(20)],
        [LabelEvent(request_id=str(i), task="SA", label="ABCDE"[i % 5]) for i in range(20)],
    )
    path = tmp_path / "mmec.json"
    write_mmec(path, examples)
    assert read_mmec(path) == examples
    assert {e.label() for e in examples} == set("ABCDE")


@pytest.mark.parametrize(
    ("captions", "voted_keep", "used"),
    [("mv", True, True), ("mv", False, False), ("uia", False, True), ("none", True, False)],
)
def test_caption_ablations_rewrite_the_keep_decisions(
    captions: Captions, voted_keep: bool, used: bool
) -> None:
    """mv: the voter's decision; uia: every caption; none: text only (no OCR tokens either)."""
    label = LabelEvent(request_id="x", task="SA", label="A", split="ood-brands")
    record = _enriched("x", keep=voted_keep, ocr="MUG 350ML")
    [example] = assemble([record], [label], captions)
    assert (CAPTION_KEY in example.input) == used
    assert example.caption_info["review"]["kept"] == used
    assert (OCR_KEY in example.input) == (captions != "none")
    assert example.split == "ood-brands"
    assert record.verdicts[0].keep == voted_keep  # the input record is left as it was
    ablated = with_captions(record, captions)
    assert ablated.captions[0].ocr_tokens == (None if captions == "none" else "MUG 350ML")


def test_unknown_caption_ablation_is_refused() -> None:
    with pytest.raises(ValueError, match="mv, uia, none"):
        with_captions(_enriched("x"), "all")  # type: ignore[arg-type]

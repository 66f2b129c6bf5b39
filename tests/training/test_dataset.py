from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from schemas import EnrichedRecord, LabelEvent, TaskRequest
from schemas.tasks.prp import PRP_OPTIONS
from schemas.tasks.registry import get_task
from schemas.tasks.sa import SA_OPTIONS
from schemas.tasks.sample import CAPTION_KEY, OCR_KEY
from training.dataset import (
    MMEC_TASKS,
    Captions,
    apply_caption_ablation,
    assemble,
    read_mmec,
    split_for,
    write_mmec,
)


def build_sample(request, kept, captioned=()):  # type: ignore[no-untyped-def]
    return get_task(request.task).assemble(request, kept, None, captioned)


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
    assert f'"{CAPTION_KEY}": "a smiling face"' in example.input
    [dropped] = assemble(
        [_enriched("y", keep=False)], [LabelEvent(request_id="y", task="SA", label="A")]
    )
    assert f'"{CAPTION_KEY}": null' in dropped.input  # the authors' form of a rejected caption


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


# -- MMECInstruct's own form -----------------------------------------------------------------

PRP_TITLES = ("Stainless Steel Electric Kettle, 1.7L", "Porcelain Tea Cups, Set of 4")
SR_HISTORY = ["1st: Ceramic Coffee Mug, 12 oz", "2nd: Bamboo Coaster Set"]
SR_OPTIONS = ["A: Glass Teapot with Infuser", "B: Espresso Cups, 2 pack", "C: Mug Rack"]


def _record(code: str, input_: object, options: list[str], output: str, captions: list[str]):  # type: ignore[no-untyped-def]
    """A record as dataset.json holds one: JSON strings for input, options, images, captions."""
    return {
        "task": MMEC_TASKS[code],
        "split": "test",
        "instruction": get_task(code).instruction,
        "input": json.dumps(input_),
        "options": json.dumps(options),
        "output": output,
        "images": json.dumps(
            [f"https://m.media-amazon.com/images/I/{code}{i}.jpg" for i in range(len(captions))]
        ),
        "caption_info": json.dumps(captions),
    }


def _authors_records() -> list[dict[str, object]]:
    prp = _record(
        "PRP",
        {"product 1": PRP_TITLES[0], "product 2": PRP_TITLES[1]},
        list(PRP_OPTIONS),
        PRP_OPTIONS[0],
        ["A silver kettle with a black handle.", "Four white cups with a blue floral rim."],
    )
    prp["caption_votes"] = json.dumps(["no", "yes"])
    sr = _record(
        "SR",
        SR_HISTORY,
        SR_OPTIONS,
        SR_OPTIONS[0],
        ["A white mug.", "Round coasters.", "A clear teapot.", "Two small cups.", "A rack."],
    )
    sr["caption_votes"] = json.dumps(["yes", "no", "no", "yes", "no"])
    sa = _record(
        "SA",
        {"review": "The mug arrived chipped, but the seller replaced it within two days."},
        list(SA_OPTIONS),
        "B: positive",
        ["A white ceramic mug with a small chip on its rim."],
    )
    ap = _record(  # as dataset.json has it: captions, no votes (unjudged)
        "AP",
        {"question": "Is the lid dishwasher safe?", "document": "Lid is fine in the dishwasher."},
        [],
        "yes",
        ["A steel travel mug with a black lid."],
    )
    cc = _record(
        "CC",
        {"title": "Café Latte Glass, 350 ml"},
        ["A: Coffee Cups & Mugs", "B: Wine Glasses"],
        "A: Coffee Cups & Mugs",
        ["A tall glass of latte."],
    )
    cc["caption_votes"] = json.dumps(["yes"])
    return [prp, sr, sa, ap, cc]


def test_reads_mmecinstruct_records(tmp_path: Path) -> None:
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(_authors_records()))
    prp, sr, sa, ap, cc = read_mmec(path)
    assert [e.task for e in (prp, sr, sa, ap, cc)] == ["PRP", "SR", "SA", "AP", "CC"]
    assert prp.options == list(PRP_OPTIONS) and prp.label() == "A"
    assert json.loads(prp.input) == {
        "product 1": PRP_TITLES[0],
        "product 2": PRP_TITLES[1],
        "product 1 information extracted from image": None,
        "product 2 information extracted from image": "Four white cups with a blue floral rim.",
    }
    assert json.loads(sr.input) == [SR_HISTORY[0] + " A white mug.", SR_HISTORY[1]]
    assert sr.options == [SR_OPTIONS[0], SR_OPTIONS[1] + " Two small cups.", SR_OPTIONS[2]]
    assert sr.label() == "A" and len(sr.images) == 5
    assert sa.caption_info == {
        "review": {"caption": "A white ceramic mug with a small chip on its rim.", "kept": None}
    }
    assert list(json.loads(sa.input)) == ["review"]  # unjudged: not merged
    assert ap.options == [] and ap.label() == "yes"
    assert "\\u00e9" in cc.input and json.loads(cc.input)[CAPTION_KEY] == "A tall glass of latte."


def test_mmecinstruct_records_round_trip_exactly(tmp_path: Path) -> None:
    records = _authors_records()
    source, copy = tmp_path / "dataset.json", tmp_path / "copy.json"
    source.write_text(json.dumps(records))
    write_mmec(copy, read_mmec(source))
    assert json.loads(copy.read_text()) == records


def test_imported_prompt_is_what_serving_builds(tmp_path: Path) -> None:
    prp = TaskRequest(
        request_id="r",
        task="PRP",
        inputs={"title1": PRP_TITLES[0], "title2": PRP_TITLES[1]},
        options=list(PRP_OPTIONS),
    )
    sr = TaskRequest(
        request_id="r",
        task="SR",
        inputs={"history": [h.split(": ", 1)[1] for h in SR_HISTORY], "candidates": []},
        options=SR_OPTIONS,
    )
    slots = ["history/0", "history/1", "option/A", "option/B", "option/C"]
    served = [
        build_sample(
            prp, {"product2": "Four white cups with a blue floral rim."}, ["product1", "product2"]
        ),
        build_sample(sr, {"history/0": "A white mug.", "option/B": "Two small cups."}, slots),
    ]
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(_authors_records()[:2]))
    examples = read_mmec(path)
    assert [e.sample().mistral_prompt() for e in examples] == [s.mistral_prompt() for s in served]


def test_reads_our_older_form(tmp_path: Path) -> None:
    older = {
        "task": "SA",
        "split": "val",
        "instruction": "x",
        "input": '{"review":"ok","product information extracted from image":"a mug"}',
        "options": ["A: very positive", "B: positive"],
        "output": "B: positive",
        "images": ["file:///r.png"],
        "caption_info": {"review": {"caption": "a mug", "kept": True}},
        "request_id": "r1",
    }
    path = tmp_path / "older.json"
    path.write_text(json.dumps([older]))
    [example] = read_mmec(path)
    assert example.options == older["options"] and example.images == ["file:///r.png"]
    assert json.loads(example.input) == json.loads(str(older["input"]))
    assert example.caption_info == older["caption_info"] and example.request_id == "r1"


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
    data = json.loads(example.input)
    assert (data.get(CAPTION_KEY) == "a smiling face") == used
    # the authors' form: a rejected caption leaves its key with null; text only leaves none
    assert (CAPTION_KEY in data) == (captions != "none")
    assert example.caption_info.get("review", {}).get("kept", False) == used
    assert (OCR_KEY in data) == (captions != "none")
    assert example.split == "ood-brands"
    assert record.verdicts[0].keep == voted_keep  # the input record is left as it was
    ablated = apply_caption_ablation(record, captions)
    tokens = [c.ocr_tokens for c in ablated.captions]
    assert tokens == ([] if captions == "none" else ["MUG 350ML"])


def test_unknown_caption_ablation_is_refused() -> None:
    with pytest.raises(ValueError, match="mv, uia, none"):
        apply_caption_ablation(_enriched("x"), "all")  # type: ignore[arg-type]


def test_a_files_examples_take_the_caption_ablations(tmp_path: Path) -> None:
    """An MMECInstruct file's prompts are built: uia merges every caption of caption_info
    whatever CQE said, none leaves the text only, mv keeps the file's decisions."""
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(_authors_records()[:2]))  # PRP (no, yes) and SR votes
    prp, sr = read_mmec(path)
    assert prp.with_caption_mode("mv") is prp
    every = prp.with_caption_mode("uia")
    data = json.loads(every.input)
    assert (
        data["product 1 information extracted from image"] == "A silver kettle with a black handle."
    )
    assert data["product 2 information extracted from image"] == (
        "Four white cups with a blue floral rim."
    )
    assert all(info["kept"] for info in every.caption_info.values())
    bare = json.loads(prp.with_caption_mode("none").input)
    assert bare == {"product 1": PRP_TITLES[0], "product 2": PRP_TITLES[1]}
    assert sr.with_caption_mode("none").options == SR_OPTIONS
    assert sr.with_caption_mode("uia").options == [
        f"{option} {caption}"
        for option, caption in zip(
            SR_OPTIONS, ["A clear teapot.", "Two small cups.", "A rack."], strict=True
        )
    ]
    claim = dataclasses.replace(prp, task="DD")
    with pytest.raises(ValueError, match="CASLIE's tasks"):
        claim.with_caption_mode("uia")

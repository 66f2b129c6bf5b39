from dataclasses import replace
from typing import Any

import orjson
import pytest
from sklearn.metrics import f1_score

from schemas.events import AspectSpec
from schemas.tasks.lg import listing_json_schema
from training.dataset import InstructionExample
from training.evaluate import category_majority, category_of, evaluate, majority_baseline


def _example(label: str) -> InstructionExample:
    return InstructionExample(
        task="SA",
        split="test",
        instruction="x",
        input="{}",
        options=["B: positive", "C: neutral", "D: negative"],
        output={"B": "B: positive", "C": "C: neutral", "D": "D: negative"}[label],
    )


def test_majority_baseline_answers_the_most_frequent_label() -> None:
    gold = list("BBBCCD")
    [score] = majority_baseline([_example(g) for g in gold]).values()
    expected = f1_score(gold, ["B"] * len(gold), average="macro", labels=sorted(set(gold)))
    assert abs(score.paper - expected) < 1e-9 and score.failures == 0


def test_category_of_reads_the_input_json() -> None:
    listing = replace(_example("B"), input='{"category": "womens-shoes", "seller_text": ""}')
    assert category_of(listing) == "womens-shoes"
    assert category_of(_example("B")) == ""
    assert category_of(replace(_example("B"), input='[{"category": "x"}]')) == ""


# -- a listing task (LG) ------------------------------------------------------------------

ASPECTS = [
    {"name": "Brand", "required": True},
    {"name": "Color", "required": True, "values": ["Blue", "Red"]},
    {"name": "Material"},
]


def _listing(category: str, title: str, brand: str, color: str) -> InstructionExample:
    gold = {"title": title, "aspects": {"Color": color, "Brand": brand}}  # not schema order
    return InstructionExample(
        task="LG",
        split="test",
        instruction="Write the listing.",
        input=orjson.dumps({"category": category, "allowed aspects": ASPECTS}).decode(),
        options=["Brand", "Color", "Material"],
        output=orjson.dumps(gold).decode(),
    )


class _Drafts:
    """A JSON extractor that writes the same draft for every prompt and keeps what it got."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls: list[tuple[list[str], list[dict[str, Any]]]] = []

    def generate_json(
        self, prompts: list[str], schemas: list[dict[str, Any]], adapter: str | None
    ) -> list[str]:
        self.calls.append((list(prompts), list(schemas)))
        return [self.text] * len(prompts)


def test_listings_are_drafted_under_their_category_schema_and_scored_canonically() -> None:
    items = [_listing("mugs", "Acme Mug, Blue", "Acme", "Blue"), _listing("mugs", "B", "B", "Red")]
    draft = '{"title":"Acme Mug, Blue","aspects":{"Color":"Blue","Brand":"Acme"}}'
    extractor = _Drafts(draft)
    [score] = evaluate(None, items, extractor=extractor).values()
    [(prompts, schemas)] = extractor.calls
    assert prompts == [e.sample().user_message() for e in items]
    expected = listing_json_schema([AspectSpec.model_validate(a) for a in ASPECTS])
    assert schemas == [expected, expected]
    assert score.per_category is not None and score.extra is not None
    assert score.per_category["mugs"]["n"] == 2 and score.extra["schema_recall"] == 1.0
    assert 0.0 < score.strict < 1.0 and score.failures == 0
    # gold and draft both name Color first: each read canonically (schema order), they match
    [same] = evaluate(None, items[:1], extractor=_Drafts(draft)).values()
    assert same.strict == pytest.approx(1.0) and same.extra == {
        "aspect_f1": pytest.approx(1.0),
        "schema_recall": 1.0,
    }
    [broken] = evaluate(None, items[:1], extractor=_Drafts("no json")).values()
    assert (broken.failures, broken.strict) == (1, 0.0)


def test_the_listing_majority_never_reads_the_example_own_draft() -> None:
    items = [
        _listing("mugs", "Mug A", "A", "Blue"),
        _listing("mugs", "Mug A", "A", "Blue"),
        _listing("mugs", "Mug B", "B", "Red"),
        _listing("shoes", "Shoe C", "C", "Red"),
    ]
    gold = [orjson.loads(e.output) for e in items]
    answers = category_majority(items, [orjson.dumps(g).decode() for g in gold])
    assert answers[:3] == [orjson.dumps(gold[0]).decode()] * 3  # B's own draft is not counted
    assert answers[3] == orjson.dumps(gold[0]).decode()  # no other shoe: all others
    assert category_majority(items[:1], [items[0].output]) == [None]
    [score] = majority_baseline(items).values()
    assert score.per_category is not None and score.per_category["mugs"]["rouge_l"] < 1.0
    assert score.failures == 0 and score.extra is not None

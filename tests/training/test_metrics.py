"""Metrics checked against scikit-learn on the same predictions, with the parse rules; a
listing task's extra and per-category scores on hand-counted answers."""

from __future__ import annotations

import random
from collections.abc import Iterator

import orjson
import pytest
from sklearn.metrics import accuracy_score, f1_score

from schemas.tasks import register, unregister
from schemas.tasks.answers import parse_answer, parse_judge_answer
from schemas.tasks.metrics import FAILED
from schemas.tasks.spec import Task
from training.metrics import score_task


@pytest.mark.parametrize(
    ("text", "labels", "parsed"),
    [
        ("A: very positive", ["A", "B"], "A"),
        ("  B ", ["A", "B"], "B"),
        ("yes", ["yes", "no"], "yes"),
        ("Yes", ["yes", "no"], "yes"),  # case-insensitive, unlike the authors' scripts
        (" NO.", ["yes", "no"], None),  # only the label itself, no trailing punctuation
        ("b: positive", ["A", "B"], "B"),  # the canonical spelling of the label
        ("The answer is A", ["A", "B"], None),
        ("Z: nothing", ["A", "B"], None),
    ],
)
def test_parse_answer(text: str, labels: list[str], parsed: str | None) -> None:
    assert parse_answer(text, labels) == parsed


def test_parse_judge_answer_in_the_authors_order() -> None:
    """Strip, then three characters, then strip '.' and ',' (ninglab/CASLIE cqe.py)."""
    assert parse_judge_answer("Yes, it helps") == "yes"
    assert parse_judge_answer("No.") == "no"
    assert parse_judge_answer(" Yes.") == "yes"  # three characters first would give "ye"
    assert parse_judge_answer("\n\nNo, because") == "no"
    assert parse_judge_answer("  no") == "no"
    assert parse_judge_answer("No\nYes") == "no"  # the newline became a space, then stripped
    # what is neither stays as it is: the authors' vote counts it
    assert parse_judge_answer("Sure, here") == "sur"
    assert parse_judge_answer("Y.") == "y"
    assert parse_judge_answer("") == ""


def _random_case(labels: list[str], n: int, seed: int) -> tuple[list[str], list[str | None]]:
    rng = random.Random(seed)
    gold = [rng.choice(labels) for _ in range(n)]
    pred: list[str | None] = [None if rng.random() < 0.1 else rng.choice(labels) for _ in range(n)]
    return gold, pred


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    ("task", "labels"),
    [
        ("AP", ["yes", "no"]),
        ("PSI", ["yes", "no"]),
        ("CC", list("ABCD")),
        ("SR", list("ABCDEFGHIJ")),
        ("MPC", list("ABCD")),
        ("PRP", list("ABC")),
        ("SA", list("ABCDE")),
    ],
)
def test_against_sklearn(task: str, labels: list[str], seed: int) -> None:
    gold, pred = _random_case(labels, 200, seed)
    score = score_task(task, gold, pred)
    kept = [(g, p) for g, p in zip(gold, pred, strict=True) if p is not None]
    kg, kp = [g for g, _ in kept], [p for _, p in kept]
    strict_pred = [p if p is not None else FAILED for p in pred]
    if task in ("AP", "PSI"):
        assert score.paper == pytest.approx(f1_score(kg, kp, pos_label="yes"))
        strict_f1 = f1_score(gold, strict_pred, labels=["yes"], average="micro")
        assert score.strict == pytest.approx(strict_f1)
    elif task in ("PRP", "SA"):
        assert score.paper == pytest.approx(f1_score(kg, kp, average="macro"))
        present = sorted(set(gold) | set(kp))
        assert score.strict == pytest.approx(
            f1_score(gold, strict_pred, labels=present, average="macro")
        )
    else:
        assert score.paper == pytest.approx(accuracy_score(kg, kp))
        assert score.strict == pytest.approx(accuracy_score(gold, strict_pred))
    assert score.failures == sum(p is None for p in pred)
    assert score.n == 200
    assert score.strict <= score.paper + 1e-9 or task in ("PRP", "SA")


def test_no_failures_means_equal_numbers() -> None:
    score = score_task("SA", ["A", "B", "C"], ["A", "B", "B"])
    assert score.paper == score.strict
    assert score.failures == 0


class _ListingStub(Task):
    """A listing task as far as scoring sees one: JSON answers, metric ``rouge_l``."""

    code = "LGSTUB"
    name = "listing stub"
    input_fields = ()
    answer = "json"
    metric = "rouge_l"


@pytest.fixture
def listing_task() -> Iterator[str]:
    register(_ListingStub())
    yield _ListingStub.code
    unregister(_ListingStub.code)


def _listing(title: str, **aspects: str) -> str:
    return orjson.dumps({"title": title, "aspects": aspects}).decode()


def test_listing_scores_overall_and_per_category(listing_task: str) -> None:
    gold = [
        _listing("red nike shoes", Brand="Nike"),
        _listing("black boots", Brand="Dr Martens"),
        _listing("blue dress", Color="Blue"),
    ]
    pred = [
        _listing("nike running shoes", Brand="Nike", Color="Red"),  # ROUGE-L 2*6/(7+9)
        None,  # a parse failure
        _listing("blue dress", Color="blue", Pattern="Floral"),  # ROUGE-L 2*6/(6+8)
    ]
    allowed = [["Brand", "Color"], ["Brand", "Color"], ["Color", "Size"]]
    categories = ["womens-shoes", "womens-shoes", "dresses"]
    score = score_task(listing_task, gold, pred, allowed, categories)
    assert score.metric == "rouge_l" and score.failures == 1 and score.per_key is None
    assert score.strict == pytest.approx((12 / 16 + 0 + 12 / 14) / 3)
    assert score.paper == pytest.approx((12 / 16 + 12 / 14) / 2)
    # pairs: tp 2 (brand nike, color blue), fp 2 (color red, pattern floral), fn 1 (boots)
    assert score.extra == pytest.approx({"aspect_f1": 4 / 7, "schema_recall": 3 / 4})
    assert score.per_category is not None
    assert list(score.per_category) == ["dresses", "womens-shoes"]
    assert score.per_category["womens-shoes"] == pytest.approx(
        {"rouge_l": 12 / 16 / 2, "aspect_f1": 2 / 4, "schema_recall": 1.0, "n": 2}
    )
    assert score.per_category["dresses"] == pytest.approx(
        {"rouge_l": 12 / 14, "aspect_f1": 2 / 3, "schema_recall": 1 / 2, "n": 1}
    )


def test_a_listing_task_needs_its_allowed_names_and_categories(listing_task: str) -> None:
    gold = [_listing("a", Brand="Nike")]
    with pytest.raises(ValueError, match="allowed names and categories"):
        score_task(listing_task, gold, gold)
    with pytest.raises(ValueError, match="1 categories for 2 examples"):
        score_task(listing_task, gold * 2, gold * 2, [["Brand"]] * 2, ["shoes"])


def test_only_listing_tasks_carry_listing_scores() -> None:
    score = score_task("SA", ["A", "B"], ["A", "A"], [["x"]] * 2, ["c", "c"])
    assert score.extra is None and score.per_category is None and score.per_key is None
    ae = '{"Brand":"Nike","Color":"Red"}'
    assert score_task("AE", [ae], [ae]).per_key == {"Brand": 1.0, "Color": 1.0}

"""Metrics checked against scikit-learn on the same predictions, with the parse rules."""

from __future__ import annotations

import random

import pytest
from sklearn.metrics import accuracy_score, f1_score

from schemas.tasks.answers import parse_answer, parse_judge_answer
from schemas.tasks.metrics import FAILED
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

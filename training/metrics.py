"""Task scores, paper-compatible and strict, from parsed answers.

Answers are parsed by their task (:mod:`schemas.tasks.answers`: the authors' rule for options,
JSON objects for AE) and scored by the task's metric (:mod:`schemas.tasks.metrics`).

- Paper-compatible: parse failures are dropped from both lists before the metric.
- Strict: a parse failure counts as a wrong answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.tasks.metrics import FAILED, attribute_scores
from schemas.tasks.registry import get_task


@dataclass(frozen=True)
class TaskScore:
    task: str
    metric: str
    #: Parse failures dropped from both lists (the authors' way).
    paper: float
    #: Parse failures counted as wrong.
    strict: float
    failures: int
    n: int
    #: Per-attribute exact match (JSON tasks), strict.
    per_key: dict[str, float] | None = None


def score_task(task: str, gold: Sequence[str], pred: Sequence[str | None]) -> TaskScore:
    """``pred`` holds parsed labels; ``None`` (or ``#failed``) marks a parse failure."""
    spec = get_task(task)
    failed = [p is None or p == FAILED for p in pred]
    kept_gold = [g for g, f in zip(gold, failed, strict=True) if not f]
    kept_pred = [str(p) for p, f in zip(pred, failed, strict=True) if not f]
    strict_pred = [FAILED if f else str(p) for p, f in zip(pred, failed, strict=True)]
    return TaskScore(
        task=task,
        metric=spec.metric,
        paper=spec.score(kept_gold, kept_pred),
        strict=spec.score(gold, strict_pred),
        failures=sum(failed),
        n=len(gold),
        per_key=attribute_scores(gold, strict_pred) if spec.answer == "json" else None,
    )

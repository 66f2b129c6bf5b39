"""Task scores, paper-compatible and strict, from parsed answers.

Answers are parsed by their task (:mod:`schemas.tasks.answers`: the authors' rule for options,
JSON objects for AE) and scored by the task's metric (:mod:`schemas.tasks.metrics`).

- Paper-compatible: parse failures are dropped from both lists before the metric.
- Strict: a parse failure counts as a wrong answer.

Beside the task's metric a score carries its breakdowns, strict: AE's exact match per
attribute (``per_key``); for a listing task (metric ``rouge_l``, OPAL's LG) the other two
listing metrics (``extra``: ``aspect_f1``, ``schema_recall``) and all three per category
(``per_category``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from schemas.tasks.metrics import FAILED, attribute_scores, listing_scores
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
    #: Per-attribute exact match (AE), strict.
    per_key: dict[str, float] | None = None
    #: The other listing metrics (``aspect_f1``, ``schema_recall``), strict.
    extra: dict[str, float] | None = None
    #: Category -> the three listing metrics and ``n``, strict.
    per_category: dict[str, dict[str, float]] | None = None


def scores_by_category(
    gold: Sequence[str],
    pred: Sequence[str],
    allowed: Sequence[Collection[str]],
    categories: Sequence[str],
) -> dict[str, dict[str, float]]:
    """:func:`~schemas.tasks.metrics.listing_scores` of each category's examples, with their
    number ``n``; categories in sorted order."""
    if len(categories) != len(gold):
        raise ValueError(f"{len(categories)} categories for {len(gold)} examples")
    members: dict[str, list[int]] = defaultdict(list)
    for i, category in enumerate(categories):
        members[category].append(i)
    return {
        category: {
            **listing_scores(
                [gold[i] for i in rows], [pred[i] for i in rows], [allowed[i] for i in rows]
            ),
            "n": len(rows),
        }
        for category, rows in sorted(members.items())
    }


def score_task(
    task: str,
    gold: Sequence[str],
    pred: Sequence[str | None],
    allowed: Sequence[Collection[str]] | None = None,
    categories: Sequence[str] | None = None,
) -> TaskScore:
    """``pred`` holds parsed labels; ``None`` (or ``#failed``) marks a parse failure. A listing
    task (metric ``rouge_l``) needs ``allowed``, each example's allowed aspect names (its
    ``options``), for schema recall, and ``categories``, each example's category, for the
    per-category scores (``ValueError`` without them); other tasks ignore both."""
    spec = get_task(task)
    failed = [p is None or p == FAILED for p in pred]
    kept_gold = [g for g, f in zip(gold, failed, strict=True) if not f]
    kept_pred = [str(p) for p, f in zip(pred, failed, strict=True) if not f]
    strict_pred = [FAILED if f else str(p) for p, f in zip(pred, failed, strict=True)]
    extra = per_category = None
    if spec.metric == "rouge_l":
        if allowed is None or categories is None:
            raise ValueError(f"{task}: a listing task is scored with allowed names and categories")
        overall = listing_scores(gold, strict_pred, allowed)
        extra = {name: value for name, value in overall.items() if name != spec.metric}
        per_category = scores_by_category(gold, strict_pred, allowed, categories)
    return TaskScore(
        task=task,
        metric=spec.metric,
        paper=spec.score(kept_gold, kept_pred),
        strict=spec.score(gold, strict_pred),
        failures=sum(failed),
        n=len(gold),
        per_key=attribute_scores(gold, strict_pred) if spec.metric == "attribute_match" else None,
        extra=extra,
        per_category=per_category,
    )

"""Answer parsing and the paper's metrics, paper-compatible and strict.

- Parsing follows the authors' scripts: strip; if the answer contains ':' keep its first
  character (the option letter); an answer that is not a legal label is a parse failure.
- Paper-compatible metric: parse failures are dropped from both lists before the metric.
- Strict metric: a parse failure counts as a wrong answer.

Metrics per task: AP/PSI binary F1 with ``yes`` positive; CC/SR accuracy of the chosen
option (= Recall@1); MPC accuracy; PRP/SA macro-F1 over the labels present.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.tasks.catalog import get_task

FAILED = "#failed"


def parse_answer(text: str, labels: Sequence[str]) -> str | None:
    """The authors' rule: strip; if the answer contains ':' keep its first character (the
    option letter). ``None`` when the result is not a legal label (a parse failure)."""
    answer = text.strip()
    if ":" in answer:
        answer = answer[:1]
    return answer if answer in labels else None


def parse_judge_answer(text: str) -> str:
    """The authors' CQE parse: first 3 characters, lower-cased, without '.' and ','."""
    return text[:3].lower().replace(".", "").replace(",", "").strip()


def accuracy(gold: Sequence[str], pred: Sequence[str]) -> float:
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold) if gold else 0.0


def f1_for(gold: Sequence[str], pred: Sequence[str], positive: str) -> float:
    tp = sum(g == positive and p == positive for g, p in zip(gold, pred, strict=True))
    fp = sum(g != positive and p == positive for g, p in zip(gold, pred, strict=True))
    fn = sum(g == positive and p != positive for g, p in zip(gold, pred, strict=True))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def macro_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Macro-F1 over the labels present in gold or predictions (scikit-learn's default)."""
    labels = sorted(set(gold) | set(pred))
    return sum(f1_for(gold, pred, label) for label in labels) / len(labels) if labels else 0.0


def metric_value(metric: str, gold: Sequence[str], pred: Sequence[str]) -> float:
    if metric == "f1_yes":
        return f1_for(gold, pred, "yes")
    if metric == "macro_f1":
        return macro_f1(gold, pred)
    return accuracy(gold, pred)  # accuracy, recall_at_1


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


def score_task(task: str, gold: Sequence[str], pred: Sequence[str | None]) -> TaskScore:
    """``pred`` holds parsed labels; ``None`` (or ``#failed``) marks a parse failure."""
    spec = get_task(task)
    failed = [p is None or p == FAILED for p in pred]
    kept_gold = [g for g, f in zip(gold, failed, strict=True) if not f]
    kept_pred = [str(p) for p, f in zip(pred, failed, strict=True) if not f]
    strict_pred = [FAILED if f else str(p) for p, f in zip(pred, failed, strict=True)]
    if spec.metric == "macro_f1":
        # strict: a failure is wrong, but not a class of its own in the average
        labels = sorted(set(gold) | set(kept_pred))
        strict = (
            sum(f1_for(gold, strict_pred, lb) for lb in labels) / len(labels) if labels else 0.0
        )
    else:
        strict = metric_value(spec.metric, gold, strict_pred)
    return TaskScore(
        task=task,
        metric=spec.metric,
        paper=metric_value(spec.metric, kept_gold, kept_pred),
        strict=strict,
        failures=sum(failed),
        n=len(gold),
    )

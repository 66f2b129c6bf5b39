"""Evaluate a model (optionally with an adapter) on instruction examples, per task."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from schemas.tasks.catalog import get_task
from training.dataset import InstructionExample
from training.metrics import TaskScore, parse_answer, score_task


def evaluate(
    scorer: Any, examples: Sequence[InstructionExample], adapter: str | None = None, batch: int = 16
) -> dict[str, TaskScore]:
    """Scores per task. ``scorer`` is an option scorer (score or generate decoding)."""
    by_task: dict[str, list[InstructionExample]] = defaultdict(list)
    for example in examples:
        by_task[example.task].append(example)
    results = {}
    for task, items in sorted(by_task.items()):
        spec = get_task(task)
        gold, pred = [], []
        for start in range(0, len(items), batch):
            chunk = items[start : start + batch]
            labels = [spec.labels(e.options) for e in chunk]
            choices = scorer.choose([e.sample().user_message() for e in chunk], labels, adapter)
            for example, choice, legal in zip(chunk, choices, labels, strict=True):
                gold.append(example.label())
                pred.append(
                    parse_answer(choice.text, legal) if choice.text is not None else choice.label
                )
        results[task] = score_task(task, gold, pred)
    return results


def majority_baseline(examples: Sequence[InstructionExample]) -> dict[str, TaskScore]:
    """Scores of always answering each task's most frequent gold label (of these examples)."""
    by_task: dict[str, list[str]] = defaultdict(list)
    for example in examples:
        by_task[example.task].append(example.label())
    results = {}
    for task, gold in sorted(by_task.items()):
        most = Counter(gold).most_common(1)[0][0]
        results[task] = score_task(task, gold, [most] * len(gold))
    return results

"""The papers' metrics over parsed answers, by name (a task names its metric).

- ``f1_yes``: binary F1 with ``yes`` positive (AP, PSI).
- ``accuracy`` / ``recall_at_1``: share of exact answers (MPC, DD, PM / CC, SR).
- ``macro_f1``: macro-F1 over the labels present (PRP, SA; scikit-learn's default).
- ``attribute_match``: VIT-Pro's AE metric: exact match per attribute after normalising both
  sides (:func:`schemas.tasks.answers.normalise_value`), averaged over every attribute of
  every example; per-key scores by :func:`attribute_scores`.

A prediction that failed to parse is passed as ``#failed`` and is simply wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import MappingProxyType

import orjson

from schemas.tasks.answers import normalise_value

FAILED = "#failed"


def accuracy(gold: Sequence[str], pred: Sequence[str]) -> float:
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold) if gold else 0.0


def f1_for(gold: Sequence[str], pred: Sequence[str], positive: str) -> float:
    tp = sum(g == positive and p == positive for g, p in zip(gold, pred, strict=True))
    fp = sum(g != positive and p == positive for g, p in zip(gold, pred, strict=True))
    fn = sum(g == positive and p != positive for g, p in zip(gold, pred, strict=True))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def macro_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Macro-F1 over the labels present in gold or in the parsed predictions (a failure is
    wrong, not a class of its own)."""
    labels = sorted(set(gold) | {p for p in pred if p != FAILED})
    return sum(f1_for(gold, pred, label) for label in labels) / len(labels) if labels else 0.0


def _attributes(text: str) -> dict[str, str]:
    if text == FAILED:
        return {}
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in obj.items()} if isinstance(obj, dict) else {}


def attribute_scores(gold: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
    """Per key of the gold objects: share of examples whose normalised values match."""
    hits: dict[str, list[bool]] = {}
    for g, p in zip(gold, pred, strict=True):
        want, got = _attributes(g), _attributes(p)
        for key, value in want.items():
            ok = key in got and normalise_value(got[key]) == normalise_value(value)
            hits.setdefault(key, []).append(ok)
    return {key: sum(v) / len(v) for key, v in hits.items()}


def attribute_match(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Exact match over every attribute of every example, after normalising both sides."""
    total = matched = 0
    for g, p in zip(gold, pred, strict=True):
        want, got = _attributes(g), _attributes(p)
        total += len(want)
        matched += sum(
            key in got and normalise_value(got[key]) == normalise_value(value)
            for key, value in want.items()
        )
    return matched / total if total else 0.0


METRICS: MappingProxyType[str, Callable[[Sequence[str], Sequence[str]], float]] = MappingProxyType(
    {
        "f1_yes": lambda gold, pred: f1_for(gold, pred, "yes"),
        "accuracy": accuracy,
        "recall_at_1": accuracy,
        "macro_f1": macro_f1,
        "attribute_match": attribute_match,
    }
)

"""The papers' metrics over parsed answers, by name (a task names its metric).

- ``f1_yes``: binary F1 with ``yes`` positive (AP, PSI).
- ``accuracy`` / ``recall_at_1``: share of exact answers (MPC, DD, PM / CC, SR).
- ``macro_f1``: macro-F1 over the labels present (PRP, SA; scikit-learn's default).
- ``attribute_match``: VIT-Pro's AE metric: exact match per attribute after normalising both
  sides (:func:`schemas.tasks.answers.normalise_value`), averaged over every attribute of
  every example; per-key scores by :func:`attribute_scores`.
- OPAL's three listing metrics (LG), over the answer text
  ``{"title": "...", "aspects": {"Name": "value", ...}}``, all computed by
  :func:`listing_scores`:

  - ``rouge_l``: ROUGE-L F1 of the predicted against the reference JSON string, averaged over
    the examples (:func:`rouge_l`);
  - ``aspect_f1``: F1 of the normalised (name, value) pairs, predicted set against reference
    set, micro-averaged over the dataset (:func:`aspect_f1`);
  - ``schema_recall``: share of the predicted aspect names that the example's category allows
    (:func:`schema_compliance`). It needs the allowed names of each example besides the
    predictions, so it is not in :data:`METRICS` (whose functions take gold and predicted
    answers only) but in :data:`SCHEMA_METRICS`.

A prediction that failed to parse is passed as ``#failed`` and is simply wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from functools import cache
from types import MappingProxyType
from typing import TYPE_CHECKING

import orjson

from schemas.tasks.answers import normalise_value

if TYPE_CHECKING:
    from rouge_score.rouge_scorer import RougeScorer

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


def _json_object(text: str) -> dict[str, object]:
    """The JSON object ``text`` holds; empty for ``#failed``, invalid JSON or a non-object."""
    if text == FAILED:
        return {}
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return {str(k): v for k, v in obj.items()} if isinstance(obj, dict) else {}


def _attributes(text: str) -> dict[str, str]:
    return {k: str(v) for k, v in _json_object(text).items()}


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


# -- OPAL's listing metrics ---------------------------------------------------------------


@cache
def _rouge_scorer() -> RougeScorer:
    from rouge_score.rouge_scorer import RougeScorer  # the ml extra

    return RougeScorer(["rougeL"])


def rouge_l(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Mean over the examples of the ROUGE-L F1 (longest common subsequence of tokens) of the
    predicted against the reference JSON string, by the ``rouge-score`` package without
    stemming. Its tokeniser lower-cases and keeps runs of ASCII letters and digits only, so
    JSON's quotes, braces, colons and commas never count (a non-ASCII letter splits a token:
    ``Café`` is ``caf``), while the keys ``title`` and ``aspects`` and the aspect names do.
    ``#failed`` scores 0."""
    if not gold:
        return 0.0
    scorer = _rouge_scorer()
    total = 0.0
    for g, p in zip(gold, pred, strict=True):
        if p != FAILED:
            total += scorer.score(g, p)["rougeL"].fmeasure
    return total / len(gold)


def aspect_name(name: str) -> str:
    """An aspect name as the listing metrics compare it: :func:`normalise_value`, case-folded."""
    return normalise_value(name).casefold()


def aspects_of(text: str) -> dict[str, str]:
    """The ``aspects`` object of a listing answer, names and values as written; empty for
    ``#failed``, invalid JSON or a missing or non-object ``aspects``. A value that is not a
    string is taken as its JSON text (``42`` is ``"42"``)."""
    aspects = _json_object(text).get("aspects")
    if not isinstance(aspects, dict):
        return {}
    return {
        str(k): v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in aspects.items()
    }


def _aspect_pairs(text: str) -> set[tuple[str, str]]:
    return {(aspect_name(k), normalise_value(v)) for k, v in aspects_of(text).items()}


def aspect_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Micro F1 of the normalised (name, value) pairs: each example's predicted set against
    its reference set, true and false positives and false negatives summed over the dataset.
    Names are normalised by :func:`aspect_name`, values by :func:`normalise_value`; a
    malformed prediction has no pairs (every reference pair is missed). 0 when neither side
    has a pair anywhere."""
    tp = fp = fn = 0
    for g, p in zip(gold, pred, strict=True):
        want, got = _aspect_pairs(g), _aspect_pairs(p)
        tp += len(want & got)
        fp += len(got - want)
        fn += len(want - got)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def schema_compliance(pred: Sequence[str], allowed: Sequence[Collection[str]]) -> float:
    """Schema-compliance recall: the share of predicted aspect names, pooled over the dataset,
    that are in their example's allowed name set (``allowed[i]``: the category's aspect
    schema, an LG request's ``options``). Names on both sides are compared as
    :func:`aspect_name` gives them (case and spacing do not matter). A malformed prediction
    names no aspect and so neither raises nor lowers it; 0 when no name is predicted."""
    named = compliant = 0
    for p, keys in zip(pred, allowed, strict=True):
        legal = {aspect_name(k) for k in keys}
        names = {aspect_name(k) for k in aspects_of(p)}
        named += len(names)
        compliant += len(names & legal)
    return compliant / named if named else 0.0


def listing_scores(
    gold: Sequence[str], pred: Sequence[str], allowed: Sequence[Collection[str]]
) -> dict[str, float]:
    """OPAL's three numbers: ``rouge_l``, ``aspect_f1`` and ``schema_recall``."""
    return {
        "rouge_l": rouge_l(gold, pred),
        "aspect_f1": aspect_f1(gold, pred),
        "schema_recall": schema_compliance(pred, allowed),
    }


METRICS: MappingProxyType[str, Callable[[Sequence[str], Sequence[str]], float]] = MappingProxyType(
    {
        "f1_yes": lambda gold, pred: f1_for(gold, pred, "yes"),
        "accuracy": accuracy,
        "recall_at_1": accuracy,
        "macro_f1": macro_f1,
        "attribute_match": attribute_match,
        "rouge_l": rouge_l,
        "aspect_f1": aspect_f1,
    }
)

#: Metrics of predictions against each example's allowed aspect names.
SCHEMA_METRICS: MappingProxyType[
    str, Callable[[Sequence[str], Sequence[Collection[str]]], float]
] = MappingProxyType({"schema_recall": schema_compliance})

"""Answer parsing, below workers and training: the one place a model's text becomes a label.

- :func:`parse_answer` is the authors' rule for option and yes/no answers.
- :func:`parse_judge_answer` is the authors' CQE parse.
- :func:`parse_json_answer` reads an attribute object (AE): valid JSON, exactly the keys
  asked for, string values; returns its canonical text (:func:`canonical_json`).
- :func:`normalise_value` is the normalisation both sides get before exact match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import orjson

#: The value of an attribute the image does not show.
UNANSWERABLE = "Unanswerable"
_SPACE = re.compile(r"\s+")
_UNANSWERABLE_FORMS = frozenset({"unanswerable", "n/a", "na", "none", "unknown", ""})


def parse_answer(text: str, labels: Sequence[str]) -> str | None:
    """The authors' rule: strip; if the answer contains ':' keep its first character (the
    option letter). Unlike their scripts the match is case-insensitive (``Yes`` is ``yes``,
    ``b: positive`` is ``B``) and the label is returned as ``labels`` spell it. ``None`` when
    the result is not a legal label (a parse failure)."""
    answer = text.strip()
    if ":" in answer:
        answer = answer[:1]
    canonical = {label.casefold(): label for label in labels}
    return canonical.get(answer.casefold())


def parse_judge_answer(text: str) -> str:
    """The authors' CQE parse (ninglab/CASLIE ``cqe.py``), in their order: newlines become
    spaces, the text is stripped, its first 3 characters kept, then stripped again, one run
    of '.' and then of ',' taken off its ends, lower-cased. ``" Yes."`` is ``"yes"``; an
    answer that is neither (``"sur"``, ``"ye"``) is returned as it is: their vote counts it."""
    head = text.replace("\n", " ").strip()[:3]
    return head.strip().strip(".").strip(",").lower()


def canonical_json(values: Mapping[str, str], keys: Sequence[str]) -> str:
    """The object's text with keys in the asked order, compact: what predictions and
    training targets carry."""
    return orjson.dumps({key: values[key] for key in keys}).decode()


def parse_json_answer(text: str, keys: Sequence[str]) -> str | None:
    """An attribute object -> its canonical text; ``None`` unless ``text`` is one JSON object
    with exactly ``keys`` and string values (a parse failure)."""
    try:
        obj = orjson.loads(text.strip())
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or set(obj) != set(keys):
        return None
    if not all(isinstance(v, str) for v in obj.values()):
        return None
    return canonical_json(obj, keys)


def normalise_value(value: str) -> str:
    """Lower case, single spaces, no surrounding punctuation; the forms of "cannot tell"
    (``N/A``, ``none`` ...) become ``unanswerable``."""
    text = _SPACE.sub(" ", value.strip().lower()).strip(" .,;:\"'")
    return "unanswerable" if text in _UNANSWERABLE_FORMS else text

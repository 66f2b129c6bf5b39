"""Small text helpers shared by the cheap judges and the OCR captioner."""

from __future__ import annotations

import re
from collections.abc import Iterable

_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "for",
        "from",
        "has",
        "have",
        "helpful",
        "identify",
        "if",
        "image",
        "in",
        "information",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "output",
        "predict",
        "product",
        "products",
        "question",
        "should",
        "that",
        "the",
        "this",
        "to",
        "user",
        "with",
        "will",
        "you",
        "your",
        "caption",
    ]
)


def words(text: str) -> list[str]:
    """Lower-case content words, stopwords removed."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1]


def overlap(text: str, context: Iterable[str]) -> float:
    """Share of ``text``'s content words that occur in the context (0 when it has none)."""
    mine = set(words(text))
    if not mine:
        return 0.0
    theirs = {w for part in context for w in words(part)}
    return len(mine & theirs) / len(mine)

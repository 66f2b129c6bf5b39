"""Answer parsing by the authors' rules (the paper-compatible path)."""

from __future__ import annotations

from collections.abc import Sequence


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

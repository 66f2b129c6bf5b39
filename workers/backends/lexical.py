"""Lexical CQE judge: yes when enough of the caption's words occur in the task context; its
score is the yes-margin, the share minus the threshold."""

from __future__ import annotations

from collections.abc import Sequence

from workers.backends.base import JudgeInput, Verdict
from workers.text import overlap


class OverlapJudge:
    name = "overlap"

    def __init__(self, threshold: float = 0.15) -> None:
        self.threshold = threshold

    def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]:
        shares = [overlap(item.caption, item.context.values()) for item in items]
        return [
            Verdict(vote=share >= self.threshold, score=share - self.threshold) for share in shares
        ]

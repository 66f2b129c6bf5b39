"""Majority vote over judges' yes/no answers (CQE's MV).

A caption is kept only when strictly more than half of the judges say yes. With an even
number of judges a tie therefore rejects the caption: a tie is not a majority, and leaving a
doubtful caption out costs less than adding a misleading one (the paper's error analysis
attributes 7% of failures to hallucinated attributes). Configure an odd number of judges to
make ties impossible.
"""

from __future__ import annotations

from collections.abc import Sequence


def majority(votes: Sequence[bool]) -> bool:
    return sum(votes) * 2 > len(votes)

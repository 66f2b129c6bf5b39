"""CQE's vote over the judges' answers: ours (:func:`majority`) and the authors'
(:func:`plurality_authors`), kept to measure against.

:func:`majority`: a caption is kept when strictly more than half of the judges say yes. With
an odd number of judges (the paper's five) that is the whole rule. With an even number a
tie is broken by the judges' summed yes-margin, each judge's ``score`` (an LLM judge's
log P(yes) - log P(no); a heuristic judge's similarity minus its threshold): kept iff the sum
is positive, so the more confident side wins. Margins that are missing (``generate``
decoding) count as 0, so a tie with no margin at all rejects: leaving a doubtful caption out
costs less than adding a misleading one (the paper's error analysis attributes 7% of
failures to hallucinated attributes). Log-odds are unbounded while a heuristic margin lies
in (-1, 1): in a mixed even set the LLMs decide ties.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def is_tie(votes: Sequence[bool]) -> bool:
    """As many yes as no votes (never with an odd count; not with no votes)."""
    return bool(votes) and sum(votes) * 2 == len(votes)


def majority(votes: Sequence[bool], margins: Sequence[float | None] = ()) -> bool:
    """Kept on a strict majority of yes; on a tie, kept iff the summed ``margins`` (the
    judges' yes-margins, ``None`` for a judge without one) is positive."""
    if is_tie(votes):
        return sum(m for m in margins if m is not None) > 0
    return sum(votes) * 2 > len(votes)


def plurality_authors(answers: Sequence[str]) -> bool:
    """The authors' rule (ninglab/CASLIE ``cqe.py``): the most common normalised answer
    wins, whatever it is (``"ye"``, ``"i t"`` ... count like ``"yes"`` and ``"no"``); among
    equally common answers the one first seen (judge order) wins; kept iff the winner is
    ``"yes"``. No answers: not kept."""
    if not answers:
        return False
    winner: str = Counter(answers).most_common(1)[0][0]
    return winner == "yes"

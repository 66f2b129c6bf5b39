"""The voting comparison's bookkeeping: the authors' answers and plurality, our ties."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

import pytest

from caslie.bench.report import markdown
from caslie.bench.voting import OneAtATime, authors_decisions, tie_counts
from workers.backends.base import JudgeInput, Verdict


class Scripted:
    """A judge answering from a script, one entry per caption."""

    def __init__(self, name: str, verdicts: list[Verdict]) -> None:
        self.name = name
        self.verdicts = verdicts
        self.calls: list[int] = []

    def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]:
        self.calls.append(len(items))
        return [self.verdicts.pop(0) for _ in items]


def _ask(judge: OneAtATime, n: int) -> None:
    judge.judge([JudgeInput("q", "c", {})] * n)


def test_authors_decide_by_the_plurality_of_raw_answers_in_judge_order() -> None:
    llm = Scripted("llm:a", [Verdict(False, text=t) for t in (" Yes.", "Sure", "No", " yes")])
    other = Scripted("llm:b", [Verdict(False, text=t) for t in ("no", "Sure", "Yes", "No")])
    heuristic = Scripted("overlap", [Verdict(v) for v in (True, False, True, False)])
    wrapped = [OneAtATime(llm), OneAtATime(other), OneAtATime(heuristic)]
    for w in wrapped:
        _ask(w, 4)
    assert llm.calls == [1, 1, 1, 1]  # one caption per call
    assert wrapped[0].answers == ["yes", "sur", "no", "yes"]
    assert wrapped[2].answers == ["yes", "no", "yes", "no"]
    order = [("r1", "a"), ("r1", "b"), ("r2", "a"), ("r3", "a")]
    decided = authors_decisions(order, wrapped)
    assert decided[("r1", "a")] == (True, ["yes", "no", "yes"])
    assert decided[("r1", "b")] == (False, ["sur", "sur", "no"])  # "sur" wins: not kept
    assert decided[("r2", "a")] == (True, ["no", "yes", "yes"])
    assert decided[("r3", "a")][0] is False  # "no" twice beats "yes" once
    with pytest.raises(ValueError):
        authors_decisions(order[:3], wrapped)


def test_tie_counts_say_how_often_and_which_way() -> None:
    ours = {
        ("r1", "a"): (True, [True, False], 1.5),
        ("r1", "b"): (False, [False, True], -0.25),
        ("r2", "a"): (True, [True, True], 3.0),
    }
    counts = tie_counts(ours)
    assert counts["ties"] == 2 and counts["captions"] == 3
    assert counts["ties_kept"] == 1 and counts["ties_rejected"] == 1
    assert counts["tie_margins"] == [-0.25, 1.5]


def test_only_takes_voting() -> None:
    wrong = subprocess.run(
        [sys.executable, "-m", "caslie", "bench", "--only", "pipeline"],
        capture_output=True,
        text=True,
    )
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == "error: --only takes 'voting' (and not with --streaming-only)"


def test_the_voting_report_names_ties_and_the_authors_winners() -> None:
    ours = {("r1", "a"): (True, [True, False], 1.5), ("r2", "a"): (False, [False, False], -2.0)}
    voting = {
        "captions": 2,
        "authors_s_per_caption": 2.0,
        "batched_s_per_caption": 1.0,
        "speedup": 2.0,
        "decision_agreement": 0.5,
        "llm_vote_agreement": 0.75,
        "authors_parse_failures": 1,
        "authors_answers": 4,
        "batched_judge_s": {"llm:a": 1.0},
        "authors_judge_s": {"llm:a": 2.0},
        "agreement_where_authors_parsed": 1.0,
        "batched_ties": tie_counts(ours),
        "kept_share_batched": 0.5,
        "kept_share_authors": 0.0,
        "authors_winner_neither": 1,
    }
    report = {
        "only": "voting",
        "started_at": "t",
        "wall_s": 3.0,
        "models": {"judges": ["a"], "captioner": "ocr"},
        "voting": voting,
    }
    text = markdown(report)
    assert "# caslie bench: voting (t)" in text and "| 2 | 2.000 | 1.000 | 2.0x |" in text
    assert "Ties (batched): 1 of 2 captions, 1 kept and 0 rejected" in text
    assert "neither yes nor no on 1 captions" in text

"""CQE the authors' way (each judge generates up to 16 tokens for one caption at a time, the
answer parsed from the text, the plurality of the raw answers deciding) against our batched
yes/no scoring and majority (ties by the summed yes-margin): same judges, same captions."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from caslie.bench.stage_runs import run_stage
from schemas.records import CaptionedRecord, EnrichedRecord
from schemas.tasks.answers import parse_judge_answer
from streams.stage import Stage
from workers.backends.base import Judge, JudgeInput, Verdict
from workers.backends.causal_lm import LlmJudge
from workers.vote import is_tie, plurality_authors
from workers.voter import VoterStage


class Timed:
    """A judge whose calls are timed: where a voter's time goes, judge by judge."""

    def __init__(self, judge: Judge) -> None:
        self.inner = judge
        self.name = judge.name
        self.seconds = 0.0

    def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]:
        began = time.perf_counter()
        try:
            return self.inner.judge(items)
        finally:
            self.seconds += time.perf_counter() - began


class OneAtATime:
    """A judge asked about one caption per call, as the authors' scripts do. ``answers``:
    each call's normalised answer as their vote counts it (a generating judge's parsed text,
    whatever it says; ``yes``/``no`` for a judge that only votes), in call order."""

    def __init__(self, judge: Judge) -> None:
        self.judge_ = judge
        self.name = judge.name
        self.texts: list[str] = []
        self.answers: list[str] = []

    def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]:
        verdicts = [self.judge_.judge([item])[0] for item in items]
        self.texts += [v.text for v in verdicts if v.text is not None]
        self.answers += [
            parse_judge_answer(v.text) if v.text is not None else ("yes" if v.vote else "no")
            for v in verdicts
        ]
        return verdicts


def authors_judges(judges: Sequence[Judge], max_new_tokens: int = 16) -> list[OneAtATime]:
    """The same judges (and loaded models), one caption per call; LLM judges generate and
    parse instead of scoring."""
    return [
        OneAtATime(LlmJudge(j.lm, "generate", max_new_tokens) if isinstance(j, LlmJudge) else j)
        for j in judges
    ]


Key = tuple[str, str]  # (request id, slot)


def _decisions(records: Sequence[BaseModel]) -> dict[Key, tuple[bool, list[bool], float]]:
    """Per judged caption: kept, the judges' votes, their summed yes-margin."""
    out = {}
    for record in records:
        assert isinstance(record, EnrichedRecord)
        for verdict in record.verdicts:
            if verdict.mode == "mv":
                out[(record.request_id, verdict.slot)] = (
                    verdict.keep,
                    [v.vote for v in verdict.votes],
                    sum(v.score for v in verdict.votes if v.score is not None),
                )
    return out


def authors_decisions(
    order: Sequence[Key], wrapped: Sequence[OneAtATime]
) -> dict[Key, tuple[bool, list[str]]]:
    """Per caption (``order``: the voter's call order), kept by the authors' plurality of
    the judges' answers (:func:`~workers.vote.plurality_authors`), and those answers."""
    if any(len(w.answers) != len(order) for w in wrapped):
        raise ValueError("every judge answers every caption once, in call order")
    out = {}
    for n, key in enumerate(order):
        answers = [w.answers[n] for w in wrapped]
        out[key] = (plurality_authors(answers), answers)
    return out


def tie_counts(ours: dict[Key, tuple[bool, list[bool], float]]) -> dict[str, Any]:
    """How often the judges split evenly and which way the summed yes-margin sent the tie."""
    ties = [k for k, (_, votes, _) in ours.items() if is_tie(votes)]
    kept = sum(ours[k][0] for k in ties)
    return {
        "captions": len(ours),
        "ties": len(ties),
        "tie_share": len(ties) / len(ours) if ours else None,
        "ties_kept": kept,
        "ties_rejected": len(ties) - kept,
        "tie_margins": sorted(round(ours[k][2], 3) for k in ties),
    }


def compare_voting(
    voter: Stage, captioned: Sequence[BaseModel], batch_size: int, max_new_tokens: int = 16
) -> dict[str, Any]:
    """Both ways on ``captioned``; the authors' judges generate up to ``max_new_tokens``."""
    if not isinstance(voter, VoterStage) or voter.mode != "mv":
        return {"skipped": "the voter is not in majority-vote mode"}
    llm_positions = [i for i, j in enumerate(voter.judges) if isinstance(j, LlmJudge)]
    if not llm_positions:
        return {"skipped": "no LLM judge configured: nothing generates"}
    ours_judges = [Timed(j) for j in voter.judges]
    ours_run = run_stage(VoterStage(ours_judges, voter.mode), captioned, batch_size)
    wrapped = authors_judges(voter.judges, max_new_tokens)
    theirs_judges = [Timed(j) for j in wrapped]
    began = time.perf_counter()
    theirs_run = run_stage(VoterStage(theirs_judges, voter.mode), captioned, 1)
    theirs_s = time.perf_counter() - began
    ours = _decisions(ours_run.outputs)
    theirs_votes = _decisions(theirs_run.outputs)  # the stage's votes; its keep is ignored
    order = _call_order(captioned)
    theirs = authors_decisions(order, wrapped)
    keys = sorted(ours.keys() & theirs.keys())
    if not keys:
        return {"skipped": "no captions to judge"}
    decision_agree = sum(ours[k][0] == theirs[k][0] for k in keys) / len(keys)
    llm_agree = sum(ours[k][1][i] == theirs_votes[k][1][i] for k in keys for i in llm_positions) / (
        len(keys) * len(llm_positions)
    )
    texts = [t for w in wrapped for t in w.texts]
    answers = [a for w in wrapped if w.texts for a in w.answers]
    failures = sum(a not in ("yes", "no") for a in answers)
    per_caption_ours = ours_run.seconds / len(keys)
    per_caption_theirs = theirs_s / len(keys)
    return {
        "captions": len(keys),
        "judges": [j.name for j in voter.judges],
        "authors_s_per_caption": per_caption_theirs,
        "batched_s_per_caption": per_caption_ours,
        "speedup": per_caption_theirs / per_caption_ours,
        "decision_agreement": decision_agree,
        "llm_vote_agreement": llm_agree,
        "authors_parse_failures": failures,
        "authors_answers": len(texts),
        "authors_answer_counts": {
            w.name: dict(Counter(w.answers).most_common()) for w in wrapped if w.texts
        },
        "authors_winner_neither": sum(
            Counter(theirs[k][1]).most_common(1)[0][0] not in ("yes", "no") for k in keys
        ),
        "batched_judge_s": {j.name: j.seconds for j in ours_judges},
        "authors_judge_s": {j.name: j.seconds for j in theirs_judges},
        "agreement_where_authors_parsed": _parsed_agreement(ours, theirs_votes, order, wrapped),
        "batched_ties": tie_counts({k: ours[k] for k in keys}),
        "kept_share_batched": sum(ours[k][0] for k in keys) / len(keys),
        "kept_share_authors": sum(theirs[k][0] for k in keys) / len(keys),
        "authors_max_new_tokens": max_new_tokens,
        "goal": {"speedup_min": 5.0, "agreement_min": 0.95},
    }


def _call_order(captioned: Sequence[BaseModel]) -> list[tuple[str, str]]:
    """(request id, slot) of every judged caption in the order the voter asks its judges."""
    order = []
    for record in captioned:
        assert isinstance(record, CaptionedRecord)
        slots = {s.slot for s in record.slots}
        order += [
            (record.request_id, c.slot)
            for c in record.captions
            if c.text is not None and c.slot in slots
        ]
    return order


def _parsed_agreement(
    ours: dict[Key, tuple[bool, list[bool], float]],
    theirs: dict[Key, tuple[bool, list[bool], float]],
    order: Sequence[Key],
    wrapped: list[OneAtATime],
) -> float | None:
    """LLM vote agreement on the captions whose generated answer parsed as yes or no: how
    the two ways compare where the model followed "Only output yes or no" (``order``: the
    voter's call order, the order of each judge's answers)."""
    pairs = [
        (ours[k][1][position], theirs[k][1][position])
        for position, w in enumerate(wrapped)
        if w.texts
        for k, answer in zip(order, w.answers, strict=True)
        if answer in ("yes", "no") and k in ours and k in theirs
    ]
    if not pairs:
        return None
    return sum(a == b for a, b in pairs) / len(pairs)

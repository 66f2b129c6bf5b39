"""CQE the authors' way (each judge generates up to 16 tokens for one caption at a time, the
answer parsed from the text) against our batched yes/no scoring: same judges, same captions."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from caslie.bench.stage_runs import run_stage
from schemas.records import CaptionedRecord, EnrichedRecord
from schemas.tasks.answers import parse_judge_answer
from streams.stage import Stage
from workers.backends.base import Judge, JudgeInput, Verdict
from workers.backends.causal_lm import LlmJudge
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
    """A judge asked about one caption per call, as the authors' scripts do."""

    def __init__(self, judge: Judge) -> None:
        self.judge_ = judge
        self.name = judge.name
        self.texts: list[str] = []

    def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]:
        verdicts = [self.judge_.judge([item])[0] for item in items]
        self.texts += [v.text for v in verdicts if v.text is not None]
        return verdicts


def authors_judges(judges: Sequence[Judge], max_new_tokens: int = 16) -> list[OneAtATime]:
    """The same judges (and loaded models), one caption per call; LLM judges generate and
    parse instead of scoring."""
    return [
        OneAtATime(LlmJudge(j.lm, "generate", max_new_tokens) if isinstance(j, LlmJudge) else j)
        for j in judges
    ]


def _decisions(records: Sequence[BaseModel]) -> dict[tuple[str, str], tuple[bool, list[bool]]]:
    out = {}
    for record in records:
        assert isinstance(record, EnrichedRecord)
        for verdict in record.verdicts:
            if verdict.mode == "mv":
                out[(record.request_id, verdict.slot)] = (
                    verdict.keep,
                    [v.vote for v in verdict.votes],
                )
    return out


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
    ours, theirs = _decisions(ours_run.outputs), _decisions(theirs_run.outputs)
    keys = sorted(ours.keys() & theirs.keys())
    if not keys:
        return {"skipped": "no captions to judge"}
    decision_agree = sum(ours[k][0] == theirs[k][0] for k in keys) / len(keys)
    llm_agree = sum(ours[k][1][i] == theirs[k][1][i] for k in keys for i in llm_positions) / (
        len(keys) * len(llm_positions)
    )
    texts = [t for w in wrapped for t in w.texts]
    failures = sum(parse_judge_answer(t) not in ("yes", "no") for t in texts)
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
        "batched_judge_s": {j.name: j.seconds for j in ours_judges},
        "authors_judge_s": {j.name: j.seconds for j in theirs_judges},
        "agreement_where_authors_parsed": _parsed_agreement(
            ours, theirs, _call_order(captioned), wrapped
        ),
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
    ours: dict[tuple[str, str], tuple[bool, list[bool]]],
    theirs: dict[tuple[str, str], tuple[bool, list[bool]]],
    order: list[tuple[str, str]],
    wrapped: list[OneAtATime],
) -> float | None:
    """LLM vote agreement on the captions whose generated answer parsed as yes or no: how
    the two ways compare where the model followed "Only output yes or no"."""
    llm = [w for w in wrapped if w.texts]
    if not llm or len(llm[0].texts) != len(order):
        return None
    position = wrapped.index(llm[0])
    parsed = [
        k
        for k, text in zip(order, llm[0].texts, strict=True)
        if parse_judge_answer(text) in ("yes", "no") and k in ours and k in theirs
    ]
    if not parsed:
        return None
    return sum(ours[k][1][position] == theirs[k][1][position] for k in parsed) / len(parsed)

"""CQE the authors' way (each judge generates up to 16 tokens for one caption at a time, the
answer parsed from the text) against our batched yes/no scoring: same judges, same captions."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from caslie.bench.inprocess import run_stage
from schemas.records import EnrichedRecord
from streams.stage import Stage
from training.metrics import parse_judge_answer
from workers.backends.base import Judge, JudgeInput, Verdict
from workers.backends.causal_lm import LlmJudge
from workers.voter import VoterStage


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


def authors_voter(
    voter: VoterStage, max_new_tokens: int = 16
) -> tuple[VoterStage, list[OneAtATime]]:
    """The same judges (and loaded models); LLM judges generate and parse instead of scoring."""
    judges = [
        OneAtATime(LlmJudge(j.lm, "generate", max_new_tokens) if isinstance(j, LlmJudge) else j)
        for j in voter.judges
    ]
    return VoterStage(judges, voter.mode), judges


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


def compare_voting(voter: Stage, captioned: Sequence[BaseModel], batch_size: int) -> dict[str, Any]:
    if not isinstance(voter, VoterStage) or voter.mode != "mv":
        return {"skipped": "the voter is not in majority-vote mode"}
    llm_positions = [i for i, j in enumerate(voter.judges) if isinstance(j, LlmJudge)]
    if not llm_positions:
        return {"skipped": "no LLM judge configured: nothing generates"}
    ours_run = run_stage(voter, captioned, batch_size)
    authors, wrapped = authors_voter(voter)
    began = time.perf_counter()
    theirs_run = run_stage(authors, captioned, 1)
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
        "kept_share_batched": sum(ours[k][0] for k in keys) / len(keys),
        "kept_share_authors": sum(theirs[k][0] for k in keys) / len(keys),
        "goal": {"speedup_min": 5.0, "agreement_min": 0.95},
    }

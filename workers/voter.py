"""CQE: every configured judge answers the task's caption-quality question for every caption
of the batch (one batched call per judge); the majority decides whether a caption is kept,
a tie by the judges' summed yes-margin (:func:`workers.vote.majority`)."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.base import now
from schemas.records import CaptionedRecord, EnrichedRecord, JudgeVote, SlotVerdict, TraceEntry
from schemas.tasks.registry import get_task
from streams import metrics
from streams.stage import Emit, Inbound, Result
from streams.topics import STAGE_LAYOUT
from workers.backends.base import Judge, JudgeInput
from workers.engine import engine_failed
from workers.vote import majority

LAYOUT = STAGE_LAYOUT["voter"]
STAGE = LAYOUT.name


class VoterStage:
    name = STAGE
    input_topics = LAYOUT.inputs
    #: A dead model engine stops the worker; anything else fails one record.
    is_fatal = staticmethod(engine_failed)

    def __init__(self, judges: Sequence[Judge], mode: str = "mv") -> None:
        if mode == "mv" and not judges:
            raise ValueError("majority voting needs at least one judge")
        self.judges = list(judges)
        self.mode = mode

    def process(self, batch: Sequence[Inbound]) -> Sequence[Result]:
        records = [item.value for item in batch]
        items: list[JudgeInput] = []
        where: list[tuple[int, str]] = []
        for i, record in enumerate(records):
            assert isinstance(record, CaptionedRecord)
            spec = get_task(record.task)
            slots = {s.slot: s for s in record.slots}
            for caption in record.captions:
                if caption.text is None or caption.slot not in slots:
                    continue
                judge_vars = slots[caption.slot].judge_vars
                items.append(
                    JudgeInput(
                        spec.judge_prompt(judge_vars, caption.text), caption.text, judge_vars
                    )
                )
                where.append((i, caption.slot))

        votes: dict[tuple[int, str], list[JudgeVote]] = {key: [] for key in where}
        if self.mode == "mv" and items:
            for judge in self.judges:
                with metrics.MODEL_SECONDS.labels(STAGE, judge.name).time():
                    answers = judge.judge(items)
                for key, verdict in zip(where, answers, strict=True):
                    votes[key].append(
                        JudgeVote(judge=judge.name, vote=verdict.vote, score=verdict.score)
                    )

        stamp = now()
        judges = ",".join(j.name for j in self.judges) if self.mode == "mv" else "uia"
        results: list[Result] = []
        for i, record in enumerate(records):
            assert isinstance(record, CaptionedRecord)
            verdicts = []
            for caption in record.captions:
                key = (i, caption.slot)
                if key not in votes:
                    verdicts.append(SlotVerdict(slot=caption.slot, keep=False, mode="no_caption"))
                elif self.mode == "uia":
                    verdicts.append(SlotVerdict(slot=caption.slot, keep=True, mode="uia"))
                else:
                    slot_votes = votes[key]
                    verdicts.append(
                        SlotVerdict(
                            slot=caption.slot,
                            keep=majority(
                                [v.vote for v in slot_votes], [v.score for v in slot_votes]
                            ),
                            mode="mv",
                            votes=slot_votes,
                        )
                    )
            for slot_verdict in verdicts:
                decision = (
                    "no_caption"
                    if slot_verdict.mode == "no_caption"
                    else ("kept" if slot_verdict.keep else "rejected")
                )
                metrics.CAPTIONS.labels(record.task, decision).inc()
            enriched = EnrichedRecord.model_validate(
                {
                    **record.model_dump(),
                    "verdicts": [v.model_dump() for v in verdicts],
                    "timestamps": {**record.timestamps, STAGE: stamp},
                    "trace": [*record.trace, TraceEntry(stage=STAGE, at=stamp, model=judges)],
                }
            )
            results.append(Emit([LAYOUT.output(enriched.request_id, enriched)]))
        return results

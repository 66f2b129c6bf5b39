"""Training data: enriched records joined with their labels, turned into instruction
examples by the same :func:`schemas.tasks.sample.sample_of` the predictor uses, split
deterministically by a hash of the request id; MMECInstruct-style JSON in and out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from schemas.records import EnrichedRecord, LabelEvent, SlotVerdict
from schemas.tasks.registry import get_task
from schemas.tasks.sample import InstructionSample, sample_of

Split = Literal["train", "val", "test"]


def split_for(request_id: str, val: float = 0.1, test: float = 0.1) -> Split:
    """Deterministic split from a hash of the request id (stable across runs and machines)."""
    bucket = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big") / 2**64
    if bucket < test:
        return "test"
    if bucket < test + val:
        return "val"
    return "train"


@dataclass(frozen=True)
class InstructionExample:
    """One MMECInstruct-style example (``input`` is the JSON text of the input object)."""

    task: str
    split: str
    instruction: str
    input: str
    options: list[str]
    output: str
    images: list[str] = field(default_factory=list)
    caption_info: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None

    def sample(self) -> InstructionSample:
        return InstructionSample(
            task=self.task,
            instruction=self.instruction,
            input=orjson.loads(self.input),
            options=list(self.options),
        )

    def sample_answer(self) -> dict[str, object]:
        """The gold answer of a JSON task as an object."""
        value = orjson.loads(self.output)
        return value if isinstance(value, dict) else {}

    def label(self) -> str:
        """The answer label (``yes``/``no``, the option letter, the JSON text) of ``output``."""
        return get_task(self.task).label_of(self.output)


#: Which captions an example's prompt carries (the paper's ablations): ``mv``, the CQE
#: decisions as the voter recorded them (CASLIE); ``uia``, every caption (use-it-all);
#: ``none``, no caption and no OCR tokens (text only: the uniM3 baseline).
Captions = Literal["mv", "uia", "none"]
CAPTIONS: tuple[Captions, ...] = ("mv", "uia", "none")


def with_captions(record: EnrichedRecord, captions: Captions) -> EnrichedRecord:
    """``record`` with its keep decisions rewritten for the ``captions`` ablation."""
    if captions == "mv":
        return record
    if captions not in CAPTIONS:
        raise ValueError(f"captions must be one of {', '.join(CAPTIONS)}, not {captions!r}")
    votes = {v.slot: v.votes for v in record.verdicts}
    keep = captions == "uia"
    verdicts = [
        SlotVerdict(
            slot=c.slot,
            keep=keep,
            mode="uia" if keep else "no_caption",
            votes=votes.get(c.slot, []),
        )
        for c in record.captions
    ]
    update: dict[str, Any] = {"verdicts": verdicts}
    if not keep:  # text only: nothing read from the images either
        update["captions"] = [c.model_copy(update={"ocr_tokens": None}) for c in record.captions]
    return record.model_copy(update=update)


def example_from(
    record: EnrichedRecord, label: str, split: str | None = None, captions: Captions = "mv"
) -> InstructionExample:
    """The instruction example of a labelled record, its prompt built by ``sample_of``
    after the ``captions`` ablation (:func:`with_captions`)."""
    record = with_captions(record, captions)
    kept = {v.slot for v in record.verdicts if v.keep}
    sample = sample_of(record)
    return InstructionExample(
        task=record.task,
        split=split or split_for(record.request_id),
        instruction=sample.instruction,
        input=sample.input_text(),
        options=sample.options,
        output=get_task(record.task).target(label, list(record.options)),
        images=[s.image.url for s in record.slots if s.image is not None],
        caption_info={c.slot: {"caption": c.text, "kept": c.slot in kept} for c in record.captions},
        request_id=record.request_id,
    )


def assemble(
    enriched: Iterable[EnrichedRecord],
    labels: Iterable[LabelEvent],
    captions: Captions = "mv",
) -> list[InstructionExample]:
    """Join by request id; the latest label wins (by ``event_time``, then arrival order) and
    gives the split when it names one. Records without a label, or with a label that is not a
    legal answer, are skipped. ``captions``: the ablation applied to every record."""
    latest: dict[str, tuple[float, int, LabelEvent]] = {}
    for order, event in enumerate(labels):
        rank = (event.event_time or 0.0, order)
        if event.request_id not in latest or rank >= latest[event.request_id][:2]:
            latest[event.request_id] = (*rank, event)
    examples = []
    seen: set[str] = set()
    for record in enriched:
        if record.request_id in seen or record.request_id not in latest:
            continue  # duplicates from at-least-once delivery, or unlabelled
        seen.add(record.request_id)
        event = latest[record.request_id][2]
        if not get_task(record.task).is_legal(event.label, record.options):
            continue
        examples.append(example_from(record, event.label, event.split, captions))
    return examples


def write_mmec(path: Path, examples: Iterable[InstructionExample]) -> None:
    path.write_bytes(orjson.dumps([asdict(e) for e in examples], option=orjson.OPT_INDENT_2))


def read_mmec(path: Path) -> list[InstructionExample]:
    """Read MMECInstruct-style JSON (a list of objects); ``input`` may be text or an object."""
    out = []
    for item in orjson.loads(path.read_bytes()):
        raw_input = item.get("input", "{}")
        out.append(
            InstructionExample(
                task=item["task"],
                split=item.get("split", "train"),
                instruction=item["instruction"],
                input=raw_input if isinstance(raw_input, str) else orjson.dumps(raw_input).decode(),
                options=list(item.get("options") or []),
                output=item["output"],
                images=list(item.get("images") or []),
                caption_info=dict(item.get("caption_info") or {}),
                request_id=item.get("request_id"),
            )
        )
    return out

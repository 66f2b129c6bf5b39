"""Training data: enriched records joined with their labels, turned into instruction
examples by the same :func:`schemas.tasks.sample.sample_of` the predictor uses, split
deterministically by a hash of the request id; MMECInstruct JSON in and out.

MMECInstruct (``NingLab/MMECInstruct`` ``dataset.json``) is a JSON list of records whose
``task`` is a long name (:data:`MMEC_TASKS`) and whose ``input``, ``options``, ``images`` and
``caption_info`` are JSON *strings*; ``input`` has no captions: ``caption_info`` lists one
generated caption per image, in the order of the products in the input (SR: history items,
then options), and the authors' loader merges the ones CQE kept. :func:`read_mmec` merges
them by the task's own :meth:`~schemas.tasks.spec.Task.with_captions` (what serving does), so
an example's ``input`` is always what the model sees; :func:`write_mmec` writes the authors'
form back. Two fields are ours: ``request_id``, and ``caption_votes`` (a JSON string list of
``"yes"``/``"no"``/``null`` beside ``caption_info``, the CQE verdicts). A record without
votes has unjudged captions, which are not merged (the text-only input) until a CQE pass
judges them. The VIT-Pro tasks, not in MMECInstruct, keep our own form: ``input`` as the
model sees it and ``caption_info`` an object (slot -> caption, kept); :func:`read_mmec` also
reads our older files (native lists and objects instead of JSON strings).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import orjson

from schemas.records import EnrichedRecord, LabelEvent, SlotVerdict
from schemas.tasks.registry import get_task
from schemas.tasks.sample import InstructionSample, json_text, sample_of

Split = Literal["train", "val", "test"]

#: Our task codes -> MMECInstruct's task names.
MMEC_TASKS: Mapping[str, str] = MappingProxyType(
    {
        "AP": "answerability_prediction",
        "CC": "category_classification",
        "PRP": "product_relation_prediction",
        "PSI": "product_substitute_identification",
        "MPC": "multiclass_product_classification",
        "SA": "sentiment_analysis",
        "SR": "sequential_recommendation",
    }
)
_CODES = MappingProxyType({name: code for code, name in MMEC_TASKS.items()})


def split_for(request_id: str, val: float = 0.1, test: float = 0.1) -> Split:
    """Deterministic split from a hash of the request id (stable across runs and machines)."""
    bucket = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big") / 2**64
    if bucket < test:
        return "test"
    if bucket < test + val:
        return "val"
    return "train"


#: Which captions an example's prompt carries (the paper's ablations): ``mv``, the CQE
#: decisions as the voter recorded them (CASLIE); ``uia``, every caption (use-it-all);
#: ``none``, no caption and no OCR tokens (text only: the uniM3 baseline).
Captions = Literal["mv", "uia", "none"]
CAPTIONS: tuple[Captions, ...] = ("mv", "uia", "none")


@dataclass(frozen=True)
class InstructionExample:
    """One instruction example: ``input`` is the JSON text of the input and ``options`` the
    options as the model sees them (kept captions merged); ``caption_info`` maps each
    captioned slot to ``{"caption": text, "kept": CQE's verdict, None if not judged}``."""

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

    def kept_captions(self) -> dict[str, str]:
        """Slot -> caption, for the captions CQE kept."""
        return {
            slot: info["caption"]
            for slot, info in self.caption_info.items()
            if info.get("kept") is True and info.get("caption")
        }

    def text_only(self) -> InstructionSample:
        """The sample without its captions (the direct path, MMECInstruct's ``input``)."""
        return get_task(self.task).without_captions(self.sample(), self.kept_captions())

    def with_caption_mode(self, captions: Captions) -> InstructionExample:
        """This example under a caption ablation, from its ``caption_info``: ``mv`` as it is,
        ``uia`` every caption merged (CQE's verdicts ignored), ``none`` text only. How an
        MMECInstruct file, whose prompts are built, takes the ablations of
        :func:`apply_caption_ablation`. VIT-Pro's claim tasks keep their own input form and
        take ``mv`` only (``ValueError`` otherwise)."""
        if captions == "mv":
            return self
        if captions not in CAPTIONS:
            raise ValueError(f"captions must be one of {', '.join(CAPTIONS)}, not {captions!r}")
        spec = get_task(self.task)
        if spec.family != "caslie":
            raise ValueError(
                f"{self.task}: caption ablations of a file take CASLIE's tasks; use the "
                "enriched records (--records) for the others"
            )
        bare = self.text_only()
        if captions == "none":
            return replace(self, input=bare.input_text(), options=bare.options, caption_info={})
        every = {s: i["caption"] for s, i in self.caption_info.items() if i.get("caption")}
        merged = spec.with_captions(bare.input, bare.options, every, list(every))
        info = {s: {"caption": c, "kept": True} for s, c in every.items()}
        return replace(self, input=merged.input_text(), options=merged.options, caption_info=info)

    def sample_answer(self) -> dict[str, object]:
        """The gold answer of a JSON task as an object."""
        value = orjson.loads(self.output)
        return value if isinstance(value, dict) else {}

    def label(self) -> str:
        """The answer label (``yes``/``no``, the option letter, the JSON text) of ``output``."""
        return get_task(self.task).label_of(self.output)


def apply_caption_ablation(record: EnrichedRecord, captions: Captions) -> EnrichedRecord:
    """``record`` with its keep decisions rewritten for the ``captions`` ablation."""
    if captions == "mv":
        return record
    if captions not in CAPTIONS:
        raise ValueError(f"captions must be one of {', '.join(CAPTIONS)}, not {captions!r}")
    if captions == "none":  # text only: no caption and nothing read from the images
        return record.model_copy(update={"captions": [], "verdicts": []})
    votes = {v.slot: v.votes for v in record.verdicts}
    verdicts = [
        SlotVerdict(slot=c.slot, keep=True, mode="uia", votes=votes.get(c.slot, []))
        for c in record.captions
    ]
    return record.model_copy(update={"verdicts": verdicts})


def example_from(
    record: EnrichedRecord, label: str, split: str | None = None, captions: Captions = "mv"
) -> InstructionExample:
    """The instruction example of a labelled record, its prompt built by ``sample_of``
    after the ``captions`` ablation (:func:`apply_caption_ablation`)."""
    record = apply_caption_ablation(record, captions)
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
    """MMECInstruct's JSON (see the module docstring)."""
    path.write_text(json.dumps([_mmec_record(e) for e in examples], indent=2))


def read_mmec(path: Path) -> list[InstructionExample]:
    """Read MMECInstruct's JSON, or our older MMECInstruct-style JSON."""
    return [_example_of(item) for item in json.loads(path.read_bytes())]


def _mmec_record(example: InstructionExample) -> dict[str, Any]:
    task = get_task(example.task)
    record: dict[str, Any] = {
        "task": MMEC_TASKS.get(example.task, example.task),
        "split": example.split,
        "instruction": example.instruction,
    }
    if example.task not in MMEC_TASKS:  # a VIT-Pro or plug-in task: our own form
        input_text, options = example.input, example.options
        captions: object = example.caption_info
        votes = None
    else:
        raw = example.text_only()
        slots = task.caption_slots(raw.input, raw.options)
        infos = [example.caption_info.get(slot) or {} for slot in slots]
        input_text, options = raw.input_text(), raw.options
        captions = [info.get("caption") for info in infos]
        votes = [_vote(info.get("kept")) for info in infos]
    record |= {
        "input": input_text,
        "options": json_text(options),
        "output": example.output,
        "images": json_text(example.images),
        "caption_info": json_text(captions),
    }
    if votes is not None and any(v is not None for v in votes):
        record["caption_votes"] = json_text(votes)
    if example.request_id is not None:
        record["request_id"] = example.request_id
    return record


def _example_of(item: Mapping[str, Any]) -> InstructionExample:
    code = _CODES.get(item["task"], item["task"])
    task = get_task(code)
    raw_input = _decoded(item.get("input", "{}"))
    options = [str(o) for o in _decoded(item.get("options")) or []]
    infos = _decoded(item.get("caption_info")) or {}
    if isinstance(infos, list):  # the authors' form: captions by position, merged here
        votes = _decoded(item.get("caption_votes")) or [None] * len(infos)
        slots = task.caption_slots(raw_input, options)
        if not len(slots) == len(infos) == len(votes):
            raise ValueError(
                f"{item['task']}: {len(infos)} captions and {len(votes)} votes for "
                f"{len(slots)} products"
            )
        caption_info: dict[str, Any] = {
            slot: {"caption": caption, "kept": _kept(vote)}
            for slot, caption, vote in zip(slots, infos, votes, strict=True)
            if caption
        }
        kept = {s: i["caption"] for s, i in caption_info.items() if i["kept"] is True}
        judged = [s for s, i in caption_info.items() if i["kept"] is not None]
        sample = task.with_captions(raw_input, options, kept, judged)
        input_text, options = sample.input_text(), sample.options
    else:  # our own form: the input as the model sees it
        caption_info = dict(infos)
        input_text = json_text(raw_input)
    return InstructionExample(
        task=code,
        split=item.get("split", "train"),
        instruction=item["instruction"],
        input=input_text,
        options=options,
        output=item["output"],
        images=[str(url) for url in _decoded(item.get("images")) or []],
        caption_info=caption_info,
        request_id=item.get("request_id"),
    )


def _decoded(value: Any) -> Any:
    """MMECInstruct's JSON-string fields decoded; our older files' native values as they are."""
    return json.loads(value) if isinstance(value, str) else value


def _vote(kept: bool | None) -> str | None:
    return None if kept is None else "yes" if kept else "no"


def _kept(vote: str | None) -> bool | None:
    return None if vote is None else vote == "yes"

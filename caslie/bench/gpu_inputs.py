"""The GPU suite's inputs, made by the pipeline's own code: the bench's workload (all seven
tasks, real prompt values, drawn product images), captioned records whose captions have
the length the captioner is asked for (within 50 words), enriched records that keep every
caption (the predictor's longest prompts), and the training examples built from them by
:func:`training.dataset.example_from`.

The captions are made up: with random weights no model could write a meaningful one, and
the suite measures speed, for which only their length matters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from PIL import Image

from caslie.bench.workload import build_workload
from schemas.records import CaptionedRecord, EnrichedRecord, TaskRequest
from schemas.tasks.registry import get_task
from training.dataset import InstructionExample, example_from
from workers.backends.base import CaptionInput

#: Image slots in one round of the workload (one request of each of the seven tasks).
SLOTS_PER_ROUND = 12


def caption_for(request: TaskRequest, slot: str, n: int) -> str:
    """A made-up caption of about 45 words, as long as the captioner's prompt allows."""
    values = next(s for s in request.slots if s.slot == slot).caption_vars
    subject = values.get("title") or values.get("review") or values.get("question") or "product"
    return (
        f"The image shows {subject} photographed on a plain studio background, centred and "
        f"well lit. The packaging text is legible, with the brand name printed in bold capital "
        f"letters above a short product description, and a small logo in the lower corner of "
        f"the frame (view {n})."
    )


@dataclass
class SuiteInputs:
    requests: list[TaskRequest] = field(default_factory=list)
    captioned: list[CaptionedRecord] = field(default_factory=list)
    enriched: list[EnrichedRecord] = field(default_factory=list)
    examples: list[InstructionExample] = field(default_factory=list)

    @property
    def captions(self) -> int:
        return sum(len(r.captions) for r in self.captioned)


def build_inputs(folder: Path, captions: int, requests: int) -> SuiteInputs:
    """Exactly ``captions`` captions to judge (the last record may carry fewer captions than
    slots; its uncaptioned slots are skipped by the voter, as a failed caption would be), and
    at least ``requests`` requests (cycling through the seven tasks) for the predictor and
    training."""
    rounds = max(math.ceil(captions / SLOTS_PER_ROUND), math.ceil(requests / 7))
    work = build_workload(folder, rounds)
    out = SuiteInputs(requests=work.requests)
    left = captions
    for n, request in enumerate(work.requests):
        texts = [(s.slot, caption_for(request, s.slot, n)) for s in request.slots]
        full = CaptionedRecord.model_validate(
            {
                **request.model_dump(),
                "captions": [{"slot": s, "text": t, "model": "synthetic"} for s, t in texts],
            }
        )
        if left > 0:
            out.captioned.append(full.model_copy(update={"captions": full.captions[:left]}))
            left -= len(out.captioned[-1].captions)
        enriched = EnrichedRecord.model_validate(
            {
                **full.model_dump(),
                "verdicts": [{"slot": s, "keep": True, "mode": "mv"} for s, _ in texts],
            }
        )
        out.enriched.append(enriched)
        labels = get_task(enriched.task).labels(enriched.options)
        out.examples.append(example_from(enriched, labels[n % len(labels)], split="train"))
    out.enriched = out.enriched[:requests]
    out.examples = out.examples[:requests]
    return out


def caption_inputs(requests: list[TaskRequest], count: int) -> list[CaptionInput]:
    """``count`` captioning inputs as the captioner stage makes them: each slot's image (the
    workload's files) with the task's captioning prompt for that slot."""
    items: list[CaptionInput] = []
    if not any(slot.image for request in requests for slot in request.slots):
        raise ValueError("no request has an image")
    while len(items) < count:
        for request in requests:
            spec = get_task(request.task)
            for slot in request.slots:
                if slot.image is None or len(items) == count:
                    continue
                with Image.open(unquote(urlsplit(slot.image.url).path)) as image:
                    rgb = image.convert("RGB")
                prompt = spec.caption_prompt(slot.caption_vars)
                items.append(CaptionInput(rgb, prompt, slot.caption_vars))
    return items

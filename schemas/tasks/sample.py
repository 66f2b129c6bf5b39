"""The instruction sample: what the predictor prompts with and the trainer learns from.

A task's :meth:`~schemas.tasks.spec.Task.assemble` builds it from a request, the captions CQE
kept (rejected ones are left out) and the OCR tokens per slot; :meth:`user_message` renders it
in its task's prompt form (uniM3's Instruction / Input / Options, or VIT-Pro's). Kept captions
go into the input JSON under :data:`CAPTION_KEY` unless the task says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from schemas.records import EnrichedRecord

CAPTION_KEY = "product information extracted from image"
#: Where a CASLIE task's input carries OCR tokens, when the captioner reads them for it.
OCR_KEY = "OCR tokens"

MISTRAL_PROMPT = (
    "[INST] Below is an instruction that describes a task, paired with an input that provides "
    "further context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Options:\n{options}\n\n"
    " [/INST] ### Response:\n"
)
MISTRAL_PROMPT_NO_OPTIONS = (
    "[INST] Below is an instruction that describes a task, paired with an input that provides "
    "further context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n [/INST] ### Response:\n"
)


@dataclass(frozen=True)
class InstructionSample:
    task: str
    instruction: str
    input: dict[str, object]
    options: list[str] = field(default_factory=list)

    def input_text(self) -> str:
        return orjson.dumps(self.input).decode()

    def options_text(self) -> str:
        return "\n".join(self.options)

    def mistral_prompt(self) -> str:
        """The authors' raw Mistral form (no chat template)."""
        if not self.options:
            return MISTRAL_PROMPT_NO_OPTIONS.format(
                instruction=self.instruction, input=self.input_text()
            )
        return MISTRAL_PROMPT.format(
            instruction=self.instruction, input=self.input_text(), options=self.options_text()
        )

    def unim3_message(self) -> str:
        """The Instruction / Input / Options content for a model's own chat template."""
        parts = [f"### Instruction:\n{self.instruction}", f"### Input:\n{self.input_text()}"]
        if self.options:
            parts.append(f"### Options:\n{self.options_text()}")
        return "\n\n".join(parts)

    def user_message(self) -> str:
        """The message in this sample's task's prompt form."""
        from schemas.tasks.registry import get_task

        return get_task(self.task).prompt(self)


def with_caption(text: str, caption: str | None) -> str:
    """``text`` with a kept caption appended (SR's history items and options)."""
    return text if caption is None else f"{text} ({CAPTION_KEY}: {caption})"


def kept_captions(record: EnrichedRecord) -> dict[str, str]:
    """Slot -> caption, for the captions CQE kept."""
    kept = {v.slot for v in record.verdicts if v.keep}
    return {c.slot: c.text for c in record.captions if c.slot in kept and c.text}


def ocr_tokens(record: EnrichedRecord) -> dict[str, str]:
    """Slot -> the OCR tokens the captioner read on its image."""
    return {c.slot: c.ocr_tokens for c in record.captions if c.ocr_tokens}


def sample_of(record: EnrichedRecord) -> InstructionSample:
    """The instruction sample of an enriched record: what predictor and trainer both use."""
    from schemas.tasks.registry import get_task

    task = get_task(record.task)
    tokens = ocr_tokens(record)
    sample = task.assemble(record, kept_captions(record), tokens)
    if tokens and not task.ocr_tokens:  # OCR on for every task (captioner.ocr_for = all)
        order = [slot.slot for slot in record.slots if slot.slot in tokens]
        sample.input[OCR_KEY] = " ### ".join(tokens[slot] for slot in order)
    return sample

"""The instruction sample: what the predictor prompts with and the trainer learns from.

A task's :meth:`~schemas.tasks.spec.Task.assemble` builds it from a request, the captions CQE
kept, the slots that had a caption at all and the OCR tokens per slot; :meth:`user_message`
renders it in its task's prompt form (uniM3's Instruction / Input / Options, or VIT-Pro's).

The CASLIE tasks build exactly the authors' MMECInstruct form (their ``load_data.py``), so
published CASLIE weights see what they were trained on: the input is the authors' JSON object
(SR: a bare list of ``"1st: title"`` items) written by ``json.dumps`` with its defaults; a
caption slot's key (:data:`CAPTION_KEY`, PRP's two keys) holds the kept caption, or ``null``
when CQE rejected it; SR appends a kept caption to its item or option (``item + ' ' +
caption``). A slot without any caption (no image, the captioner produced nothing, or the
direct path, which passes no captions) adds nothing: the text-only uniM3 form. The options
enter the prompt as their JSON text, as the authors' ``json.dumps(options)`` does.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schemas.records import EnrichedRecord

CAPTION_KEY = "product information extracted from image"
#: Where a CASLIE task's input carries OCR tokens, when the captioner reads them for it.
OCR_KEY = "OCR tokens"
#: A sample's input: a JSON object, or (SR) the authors' bare list of items.
SampleInput = dict[str, object] | list[object]

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


def json_text(value: object) -> str:
    """``json.dumps`` with its defaults (``", "``/``": "`` separators, ASCII escapes): the
    authors' text of inputs and options."""
    return json.dumps(value)


@dataclass(frozen=True)
class InstructionSample:
    task: str
    instruction: str
    input: SampleInput
    options: list[str] = field(default_factory=list)

    def input_text(self) -> str:
        """The input as the prompt and MMECInstruct carry it (:func:`json_text`)."""
        return json_text(self.input)

    def options_text(self) -> str:
        """The options as the prompt carries them: their JSON list (the authors' form)."""
        return json_text(self.options)

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
    """``text`` with a kept caption appended, the authors' ``item + ' ' + caption`` (SR's
    history items and options)."""
    return text if caption is None else f"{text} {caption}"


def without_caption(text: str, caption: str | None) -> str:
    """The inverse of :func:`with_caption`."""
    suffix = f" {caption}"
    return text[: -len(suffix)] if caption is not None and text.endswith(suffix) else text


def put_caption(
    data: dict[str, object],
    key: str,
    slot: str,
    kept: Mapping[str, str],
    captioned: Collection[str],
) -> None:
    """The authors' caption key: the kept caption, ``None`` (null) for one CQE rejected,
    nothing for a slot without a caption."""
    if slot in kept:
        data[key] = kept[slot]
    elif slot in captioned:
        data[key] = None


def kept_captions(record: EnrichedRecord) -> dict[str, str]:
    """Slot -> caption, for the captions CQE kept."""
    kept = {v.slot for v in record.verdicts if v.keep}
    return {c.slot: c.text for c in record.captions if c.slot in kept and c.text}


def captioned_slots(record: EnrichedRecord) -> set[str]:
    """The slots with a caption, kept or not (a caption without a verdict counts rejected)."""
    return {c.slot for c in record.captions if c.text}


def ocr_tokens(record: EnrichedRecord) -> dict[str, str]:
    """Slot -> the OCR tokens the captioner read on its image."""
    return {c.slot: c.ocr_tokens for c in record.captions if c.ocr_tokens}


def sample_of(record: EnrichedRecord) -> InstructionSample:
    """The instruction sample of an enriched record: what predictor and trainer both use."""
    from schemas.tasks.registry import get_task

    task = get_task(record.task)
    tokens = ocr_tokens(record)
    sample = task.assemble(record, kept_captions(record), tokens, captioned_slots(record))
    # OCR on for every task (captioner.ocr_for = all); SR's bare list has no key to carry them
    if tokens and not task.ocr_tokens and isinstance(sample.input, dict):
        order = [slot.slot for slot in record.slots if slot.slot in tokens]
        sample.input[OCR_KEY] = " ### ".join(tokens[slot] for slot in order)
    return sample

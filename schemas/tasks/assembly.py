"""uniM3 input assembly: the one function that turns a request plus its kept captions into
the instruction sample that both the predictor and the trainer use.

Kept captions go into the input JSON under ``"product information extracted from image"``
(PRP: ``"product N information extracted from image"``; SR: appended to the history item or
option text). Rejected captions are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from schemas.records import TaskRequest
from schemas.tasks.catalog import get_task
from schemas.tasks.spec import ordinal

CAPTION_KEY = "product information extracted from image"

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

    def user_message(self) -> str:
        """The same Instruction / Input / Options content for a model's own chat template."""
        parts = [f"### Instruction:\n{self.instruction}", f"### Input:\n{self.input_text()}"]
        if self.options:
            parts.append(f"### Options:\n{self.options_text()}")
        return "\n\n".join(parts)


def _with_caption(text: str, caption: str | None) -> str:
    return text if caption is None else f"{text} ({CAPTION_KEY}: {caption})"


def build_sample(request: TaskRequest, kept: Mapping[str, str]) -> InstructionSample:
    """Assemble the uniM3 sample; ``kept`` maps slot name -> caption that CQE kept."""
    spec = get_task(request.task)
    inputs = request.inputs
    options = list(request.options)
    data: dict[str, object]
    match spec.code:
        case "AP":
            data = {"question": inputs["question"], "document": inputs["document"]}
        case "CC":
            data = {"product title": inputs["title"]}
        case "PRP":
            data = {"product 1 title": inputs["title1"], "product 2 title": inputs["title2"]}
            for n in (1, 2):
                if f"product{n}" in kept:
                    data[f"product {n} information extracted from image"] = kept[f"product{n}"]
        case "PSI" | "MPC":
            data = {"query": inputs["query"], "product title": inputs["title"]}
        case "SA":
            data = {"review": inputs["review"]}
        case "SR":
            history = inputs["history"]
            assert isinstance(history, list)
            data = {
                "purchase history": [
                    _with_caption(f"{ordinal(i + 1)}: {title}", kept.get(f"history/{i}"))
                    for i, title in enumerate(history)
                ]
            }
            options = [
                _with_caption(opt, kept.get(f"option/{opt.split(':', 1)[0]}")) for opt in options
            ]
    if spec.code not in ("PRP", "SR"):
        caption = kept.get("product") or kept.get("review")
        if caption is not None:
            data[CAPTION_KEY] = caption
    return InstructionSample(
        task=spec.code, instruction=spec.instruction, input=data, options=options
    )

"""Prompt pieces the task modules share: CASLIE's captioning prefix and slot names, and
VIT-Pro's question form (Table 10 of the paper, see ``vitpro-opal.md``).

VIT-Pro's form: ``Instruction: provide an answer to the question in a single word. Use the
image to answer. [Product Description: ...] Question: ... OCR Tokens: ... Answer:``. Several
images are numbered ``[1]``, ``[2]`` and their contexts separated by ``###``; on the CASLIE
path an image is represented by its kept caption, so the numbered contexts are captions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

CAPTION_PREFIX = "Please generate an informative caption for the product in the image. "
#: The authors' instruction to the VLM captioners (``captioning.py``, ``caption_llama``):
#: :data:`CAPTION_PREFIX` with "concise" and the 50-word bound merged in.
CONCISE_CAPTION = (
    "Please generate a concise and informative caption for the product in the image "
    "within 50 words."
)
#: The context-free captioning prompt (``captioner.prompt = "generic"``): the same for every
#: image of every task, as the paper's task-unaware BLIP-2 captions.
GENERIC_CAPTION_PROMPT = CONCISE_CAPTION

#: Reference slot text of caslie-method.md -> our template field name.
REFERENCE_SLOT_NAMES: MappingProxyType[str, str] = MappingProxyType(
    {
        "question": "question",
        "review": "review",
        "caption": "caption",
        "title": "title",
        "options": "options",
        "title of the product": "title",
        "title of another product": "other_title",
        "caption of product 1": "caption",
        "query": "query",
        "title, category, brand": "item",
    }
)

VITPRO_INSTRUCTION = (
    "Instruction: provide an answer to the question in a single word. Use the image to answer."
)
#: What stands for OCR tokens when an image has none (no text read, or OCR off).
NO_OCR = "none"
#: A slot's place in a multi-image context when its caption was not kept.
NO_CAPTION = "no information"


def concise_caption_prompt(prompt: str) -> str:
    """A captioning prompt as the VLM backends send it: the instruction said once.

    A task prompt's leading :data:`CAPTION_PREFIX` becomes :data:`CONCISE_CAPTION` and the
    task-specific rest follows (``"{CONCISE_CAPTION} {rest}"``, the authors' form); a prompt
    that already starts with :data:`CONCISE_CAPTION` (:data:`GENERIC_CAPTION_PROMPT`) is
    kept; any other prompt gets :data:`CONCISE_CAPTION` in front.
    """
    if prompt.startswith(CONCISE_CAPTION):
        return prompt
    rest = prompt.removeprefix(CAPTION_PREFIX).strip()
    return f"{CONCISE_CAPTION} {rest}" if rest else CONCISE_CAPTION


def numbered_images(contexts: Sequence[str]) -> str:
    """``["a", "b"]`` -> ``"[1] a ### [2] b"`` (VIT-Pro's multi-image form)."""
    return " ### ".join(f"[{i + 1}] {text}" for i, text in enumerate(contexts))


_NUMBER = re.compile(r"\[(\d+)\] ")


def image_contexts(text: str) -> list[str]:
    """The inverse of :func:`numbered_images` for two images or more (the task modules write
    one image's context bare): ``"[1] a ### [2] b"`` -> ``["a", "b"]``; any other text is one
    image's context (``"a"`` -> ``["a"]``, ``"[1] a"`` -> ``["[1] a"]``)."""
    parts = text.split(" ### ")
    numbered = [_NUMBER.match(p) for p in parts]
    if len(parts) < 2 or not all(
        m is not None and m.group(1) == str(i + 1) for i, m in enumerate(numbered)
    ):
        return [text]
    return [p[m.end() :] for p, m in zip(parts, numbered, strict=True) if m is not None]


def vitpro_prompt(
    instruction: str,
    question: str,
    fields: Mapping[str, str],
    answer_cue: str = "Answer:",
) -> str:
    """VIT-Pro's prompt: the instruction, the context fields in order (``Product
    Description``, ``Image information``, ``Customer text`` ...), the question, the OCR
    tokens, and the answer cue."""
    parts = [instruction]
    parts += [f"{name}: {value}" for name, value in fields.items() if name != "OCR Tokens"]
    parts.append(f"Question: {question}")
    parts.append(f"OCR Tokens: {fields.get('OCR Tokens', NO_OCR)}")
    parts.append(answer_cue)
    return " ".join(parts)

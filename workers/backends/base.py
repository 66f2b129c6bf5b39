"""One small interface per model role.

- :class:`Captioner`: caption images, each with its task-conditioned prompt (EC3).
- :class:`OcrReader`: the OCR tokens of images (the text a VIT-Pro prompt quotes).
- :class:`Judge`: say yes/no to "will this caption help this task?" (CQE).
- :class:`OptionScorer`: pick one legal answer per prompt (uniM3), never an illegal one.
- :class:`JsonExtractor`: fill a JSON object with exactly the asked keys per prompt (AE),
  valid by construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image


@dataclass(frozen=True)
class CaptionInput:
    image: Image.Image
    #: The full captioning prompt (task-conditioned).
    prompt: str
    #: The values the prompt was built from (title, query, question, review ...).
    context: Mapping[str, str]


@dataclass(frozen=True)
class JudgeInput:
    #: The full CQE prompt of the task (ends with "Only output yes or no.").
    prompt: str
    caption: str
    #: The task context the caption should help with (the judge template's values).
    context: Mapping[str, str]


@dataclass(frozen=True)
class Verdict:
    vote: bool
    #: The yes-margin, positive when the judge leans yes: log P(yes) - log P(no) for an LLM
    #: judge, similarity minus threshold for a heuristic one; what a tie break sums.
    score: float | None = None
    #: The raw text the judge generated (``generate`` decoding only).
    text: str | None = None


@dataclass(frozen=True)
class Choice:
    """The chosen answer and, where the backend has them, log-probabilities per answer."""

    label: str
    scores: dict[str, float] | None = None
    #: The raw text the model generated (``generate`` decoding only).
    text: str | None = None


class Captioner(Protocol):
    name: str

    def caption(self, items: Sequence[CaptionInput]) -> list[str]: ...


class OcrReader(Protocol):
    """OCR tokens per image: the words read, in reading order (top to bottom, left to
    right), space-separated, at most the reader's maximum number of words; ``""`` where
    nothing readable. Raises where an image cannot be read at all."""

    name: str

    def read(self, images: Sequence[Image.Image]) -> list[str]: ...


class Judge(Protocol):
    name: str

    def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]: ...


class OptionScorer(Protocol):
    name: str

    def choose(
        self, prompts: Sequence[str], labels: Sequence[Sequence[str]], adapter: str | None
    ) -> list[Choice]: ...


class JsonExtractor(Protocol):
    name: str

    def extract(
        self, prompts: Sequence[str], keys: Sequence[Sequence[str]], adapter: str | None
    ) -> list[dict[str, str]]: ...

    def generate_json(
        self, prompts: Sequence[str], schemas: Sequence[Mapping[str, Any]], adapter: str | None
    ) -> list[str]:
        """One JSON text per prompt, decoded under its (bounded) JSON Schema (LG's drafts)."""
        ...


class BackendUnavailable(RuntimeError):
    """A backend's package or model is missing; the message says how to get it."""

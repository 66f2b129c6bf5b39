"""One small interface per model role.

- :class:`Captioner`: caption images, each with its task-conditioned prompt (EC3).
- :class:`Judge`: say yes/no to "will this caption help this task?" (CQE).
- :class:`OptionScorer`: pick one legal answer per prompt (uniM3), never an illegal one.
- :class:`AttributeExtractor`: one attribute object per prompt (AE), exactly its keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

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


class Judge(Protocol):
    name: str

    def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]: ...


class OptionScorer(Protocol):
    name: str

    def choose(
        self, prompts: Sequence[str], labels: Sequence[Sequence[str]], adapter: str | None
    ) -> list[Choice]: ...


class AttributeExtractor(Protocol):
    name: str

    def extract(
        self, prompts: Sequence[str], keys: Sequence[Sequence[str]], adapter: str | None
    ) -> list[dict[str, str]]: ...


class BackendUnavailable(RuntimeError):
    """A backend's package or model is missing; the message says how to get it."""

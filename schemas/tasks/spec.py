"""The shape of a task spec: inputs, options, metric, and the three prompt templates."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class TaskCode(StrEnum):
    AP = "AP"
    CC = "CC"
    PRP = "PRP"
    PSI = "PSI"
    MPC = "MPC"
    SA = "SA"
    SR = "SR"


Metric = Literal["f1_yes", "accuracy", "macro_f1", "recall_at_1"]

LETTERS = "ABCDEFGHIJKLMNOPQRST"


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill ``{name}`` fields of a template; a missing field is an error, never left blank."""
    needed = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    missing = needed - values.keys()
    if missing:
        raise KeyError(f"template needs {sorted(missing)}")
    return template.format_map({k: values[k] for k in needed})


def template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@dataclass(frozen=True)
class TaskSpec:
    """Everything the pipeline needs to know about one CASLIE task.

    Templates use ``{name}`` fields; the reference's ``{{x}}`` slots map onto them (see
    ``REFERENCE_SLOT_NAMES`` in :mod:`schemas.tasks.catalog`).
    """

    code: TaskCode
    name: str
    #: Fields of ``TaskRequest.inputs`` this task needs.
    input_fields: tuple[str, ...]
    #: Fixed option strings (``"A: ..."``); empty when options come with each request.
    options: tuple[str, ...]
    #: ``binary``: answers are ``yes``/``no``; ``lettered``: answers are option letters.
    answer_kind: Literal["binary", "lettered"]
    metric: Metric
    caption_template: str
    judge_template: str
    instruction: str
    #: Variables the caption and judge templates need from each image slot.
    caption_vars: frozenset[str] = field(init=False)
    judge_vars: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "caption_vars", frozenset(template_fields(self.caption_template)))
        judge = template_fields(self.judge_template) - {"caption"}
        object.__setattr__(self, "judge_vars", frozenset(judge))

    def caption_prompt(self, values: Mapping[str, str]) -> str:
        return render(self.caption_template, values)

    def judge_prompt(self, values: Mapping[str, str], caption: str) -> str:
        return render(self.judge_template, {**values, "caption": caption})

    def labels(self, options: tuple[str, ...] | list[str]) -> list[str]:
        """The legal answers for a request with these options (``yes``/``no`` or letters)."""
        if self.answer_kind == "binary":
            return ["yes", "no"]
        return [opt.split(":", 1)[0].strip() for opt in options]


def letter_options(texts: list[str] | tuple[str, ...]) -> list[str]:
    """``["x", "y"]`` -> ``["A: x", "B: y"]`` (at most 20 options, A..T)."""
    if len(texts) > len(LETTERS):
        raise ValueError(f"at most {len(LETTERS)} options, got {len(texts)}")
    return [f"{LETTERS[i]}: {text}" for i, text in enumerate(texts)]


def ordinal(n: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"

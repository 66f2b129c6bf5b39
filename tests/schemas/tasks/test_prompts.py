"""The VLM captioning instruction: every task's prompt says "concise ... within 50 words"
once, in the authors' merged sentence, followed by the task's own rest."""

from __future__ import annotations

import pytest

from schemas.tasks.prompts import (
    CAPTION_PREFIX,
    CONCISE_CAPTION,
    GENERIC_CAPTION_PROMPT,
    concise_caption_prompt,
    image_contexts,
    numbered_images,
)
from schemas.tasks.registry import all_tasks, get_task


@pytest.mark.parametrize("code", [task.code for task in all_tasks()])
def test_every_task_prompt_gets_the_merged_instruction_once(code: str) -> None:
    spec = get_task(code)
    prompt = spec.caption_prompt(dict.fromkeys(spec.caption_vars, "red mug"))
    rest = prompt[len(CAPTION_PREFIX) :]
    merged = concise_caption_prompt(prompt)
    assert merged == f"{CONCISE_CAPTION} {rest}"
    assert merged.count("caption for the product in the image") == 1
    assert "informative caption for" not in rest  # the task's rest repeats no instruction


def test_generic_and_foreign_prompts() -> None:
    assert concise_caption_prompt(GENERIC_CAPTION_PROMPT) == CONCISE_CAPTION
    assert concise_caption_prompt(CAPTION_PREFIX) == CONCISE_CAPTION
    assert concise_caption_prompt("Mention the brand.") == f"{CONCISE_CAPTION} Mention the brand."


@pytest.mark.parametrize("contexts", [["NINE WEST", "none"], ["a", "b", "[3] c"], ["x"] * 4])
def test_numbered_contexts_come_back_apart(contexts: list[str]) -> None:
    assert image_contexts(numbered_images(contexts)) == contexts


@pytest.mark.parametrize("text", ["black leather pumps", "[1] one image", "[1] a ### [3] b", ""])
def test_any_other_text_is_one_image(text: str) -> None:
    assert image_contexts(text) == [text]

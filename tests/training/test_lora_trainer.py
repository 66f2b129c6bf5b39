"""train_lora on transformers.Trainer: the epoch order reaches the Trainer's dataloader (a
resumed epoch included), and a run killed after a checkpoint resumes from it and ends where
an uninterrupted run ends. A tiny Llama built here (no model hub): a code-path check."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from schemas import EnrichedRecord, LabelEvent
from schemas.tasks.sa import SA_OPTIONS
from training.dataset import InstructionExample, assemble
from training.lora import LoraSettings, _collate, _epoch_order, train_lora

ROOT = Path(__file__).resolve().parents[2]


def _examples(n: int) -> list[InstructionExample]:
    records = [
        EnrichedRecord(
            request_id=f"r{i}",
            task="SA",
            inputs={"review": f"yes no {'A ' * (i % 7)}"},
            options=list(SA_OPTIONS),
        )
        for i in range(n)
    ]
    labels = [LabelEvent(request_id=f"r{i}", task="SA", label="BD"[i % 2]) for i in range(n)]
    return assemble(records, labels)


def _tiny_lm(delay: float = 0.0) -> Any:
    """A 2-layer Llama on the SentencePiece-style test tokenizer; ``delay`` seconds per
    forward pass keep a run long enough to be killed between checkpoints."""
    from types import SimpleNamespace

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.support.tokenizers import sentencepiece_style

    tokenizer = sentencepiece_style()
    tokenizer.eos_token = tokenizer.pad_token = "<unk>"
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
    )
    model = LlamaForCausalLM(config)
    if delay:
        model.register_forward_pre_hook(lambda *_: time.sleep(delay))
    return SimpleNamespace(model=model, tokenizer=tokenizer, prompt=lambda m: f"{m}\n")


SETTINGS = LoraSettings(
    micro_batch=2,
    effective_batch=4,
    epochs=2,
    checkpoint_every=2,
    r=4,
    alpha=8,
    target_modules=("q_proj", "v_proj"),
)  # 24 examples: 6 steps an epoch, 12 in all


def job(out: str, checkpoints: str, delay: str) -> None:
    """One training run (a subprocess of the test)."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
    train_lora(_tiny_lm(float(delay)), _examples(24), Path(out), SETTINGS, False, Path(checkpoints))


def _run(out: Path, checkpoints: Path, delay: float) -> subprocess.Popen[str]:
    call = f"job({str(out)!r}, {str(checkpoints)!r}, '{delay}')"
    code = f"from tests.training.test_lora_trainer import job; {call}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _saved(checkpoints: Path) -> list[int]:
    """Steps of the complete checkpoints (a trainer_state.json being written does not read)."""
    steps = []
    for path in checkpoints.glob("checkpoint-*/trainer_state.json"):
        try:
            steps.append(json.loads(path.read_text())["global_step"])
        except (OSError, ValueError):
            continue
    return sorted(steps)


def test_a_killed_run_resumes_from_its_checkpoint_and_ends_as_an_uninterrupted_one(
    tmp_path: Path,
) -> None:
    import torch
    from safetensors.torch import load_file

    whole = _run(tmp_path / "whole", tmp_path / "whole-ckpt", 0.0)
    first = _run(tmp_path / "out", tmp_path / "ckpt", 0.25)
    deadline = time.monotonic() + 60
    while not _saved(tmp_path / "ckpt") and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert first.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (tmp_path / "out" / "train.json").exists()
    second = _run(tmp_path / "out", tmp_path / "ckpt", 0.0)
    log, _ = second.communicate(timeout=120)
    assert second.returncode == 0, log[-3000:]
    summary = json.loads((tmp_path / "out" / "train.json").read_text())
    resumed = summary["resumed_from_step"]
    assert 2 <= resumed < 12 and resumed % 2 == 0, log[:3000]
    assert f"resuming from step {resumed} of 12" in log
    state = json.loads((tmp_path / "ckpt" / "checkpoint-12" / "trainer_state.json").read_text())
    assert state["global_step"] == 12 and summary["steps"] == 12
    logged = [h["step"] for h in state["log_history"] if "loss" in h]
    assert logged == list(range(1, 13))  # every step once: before the kill, then after
    whole_log, _ = whole.communicate(timeout=120)
    assert whole.returncode == 0, whole_log[-3000:]
    a = load_file(tmp_path / "out" / "adapter" / "adapter_model.safetensors")
    b = load_file(tmp_path / "whole" / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5), name
    assert any(bool(torch.any(v != 0)) for k, v in a.items() if "lora_B" in k)  # it learned


def test_the_dataloader_follows_the_epoch_order_and_a_resumed_epoch_skips_its_start(
    tmp_path: Path,
) -> None:
    from accelerate import skip_first_batches  # type: ignore[import-untyped]
    from transformers import TrainingArguments

    from training.lora_trainer import EpochOrderSampler, OrderedTrainer, Rows

    rows = [([i] * (1 + i % 5), [i] * (1 + i % 5)) for i in range(40)]
    strata = ["BC"[i % 2] for i in range(40)]
    sampler = EpochOrderSampler(rows, strata, micro_batch=4, seed=7)
    sampler.set_epoch(1)
    assert list(sampler) == _epoch_order(rows, strata, 4, 8) != _epoch_order(rows, strata, 4, 7)
    trainer = OrderedTrainer(
        model=_tiny_lm().model,
        args=TrainingArguments(
            output_dir=str(tmp_path),
            per_device_train_batch_size=4,
            use_cpu=True,
            report_to="none",
            remove_unused_columns=False,
        ),
        train_dataset=Rows(rows),
        data_collator=lambda f: _collate([(x["input_ids"], x["labels"]) for x in f], 0),
        sampler=sampler,
    )
    loader: Any = trainer.get_train_dataloader()  # accelerate's DataLoaderShard
    for epoch in (0, 1):
        loader.set_epoch(epoch)  # as Trainer does before each epoch
        seen = [int(i) for batch in loader for i in batch["input_ids"][:, 0]]
        assert seen == _epoch_order(rows, strata, 4, 7 + epoch)
    skipped = skip_first_batches(loader, 3)  # Trainer resuming 3 micro-batches into epoch 1
    skipped.set_epoch(1)
    seen = [int(i) for batch in skipped for i in batch["input_ids"][:, 0]]
    assert seen == _epoch_order(rows, strata, 4, 8)[12:]

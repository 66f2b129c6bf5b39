"""LoRA fine-tuning of a causal LM on instruction examples (transformers + peft).

Loss on the response tokens only (the answer text plus EOS). Defaults are the paper's
(lr 1e-4, effective batch 128 by accumulation, cosine schedule, 5% warm-up, 3 epochs, r 16,
alpha 16, dropout 0.1, all projection layers and lm_head, cutoff 2048); every one can be
overridden, and CPU runs use smaller settings. Adapters for a vLLM predictor leave lm_head
out (:func:`target_modules`). Checkpoints let an interrupted run resume.
The same code runs on GPUs (``accelerate launch`` for several is future work).
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.dataset import InstructionExample
from workers.backends.prompt_form import DEFAULT_CUTOFF, AnswerTooLong, fit_prompt

log = logging.getLogger(__name__)

#: Micro-batches per length-sorted window of an epoch (see :func:`_epoch_order`).
GROUP = 16

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def target_modules(backend: str, lm_head: bool | None = None) -> tuple[str, ...]:
    """The modules an adapter trains for the predictor ``backend`` that will serve it: the
    projections, and ``lm_head`` (the paper's) where asked for (``lm_head``) or, unset,
    where the backend serves it: ``transformers`` yes, ``vllm`` no (vLLM refuses lm_head
    adapters on many versions and architectures: :mod:`workers.backends.vllm`). Raises
    :class:`ValueError` for ``lm_head=True`` with ``vllm``."""
    if backend == "vllm" and lm_head:
        raise ValueError(
            "predictor.backend = 'vllm' cannot serve an lm_head adapter on every vLLM version "
            "and model (docs/training.md): train without --lm-head, or serve with "
            "predictor.backend = 'transformers'"
        )
    with_head = backend != "vllm" if lm_head is None else lm_head
    return PROJECTIONS + (("lm_head",) if with_head else ())


@dataclass
class LoraSettings:
    learning_rate: float = 1e-4
    effective_batch: int = 128
    micro_batch: int = 4
    epochs: float = 3.0
    warmup_ratio: float = 0.05
    r: int = 16
    alpha: int = 16
    dropout: float = 0.1
    target_modules: tuple[str, ...] = (*PROJECTIONS, "lm_head")
    #: Prompt plus answer tokens (``predictor.cutoff`` at serving time).
    cutoff: int = DEFAULT_CUTOFF
    seed: int = 0
    #: Save a resumable checkpoint every this many optimizer steps (0: never).
    checkpoint_every: int = 20
    extra: dict[str, Any] = field(default_factory=dict)


def encode(example: InstructionExample, lm: Any, cutoff: int) -> tuple[list[int], list[int]]:
    """(input ids, labels) with the prompt masked out (-100) so only the answer is learned.

    The prompt is ``lm.prompt`` of the example's message (the form serving uses), cut by
    :func:`~workers.backends.prompt_form.fit_prompt` to leave room for the answer and EOS;
    raises :class:`~workers.backends.prompt_form.AnswerTooLong` when the answer itself does
    not leave a prompt token within ``cutoff``.

    The answer's tokens are those of prompt and answer encoded together, after the prompt's
    (as the authors tokenized the whole text): on a SentencePiece tokenizer (Llama, Mistral)
    ``B`` after ``### Response:\n`` is the bare piece ``B``, while ``B`` encoded alone would be
    ``▁B``, a token serving never sees there. Where the joint encoding does not start with
    the prompt's own tokens, the answer is encoded alone."""
    tokenizer = lm.tokenizer
    text = lm.prompt(example.sample().user_message())
    head = tokenizer.encode(text, add_special_tokens=False)
    joint = tokenizer.encode(text + example.output, add_special_tokens=False)
    answer = joint[len(head) :] if joint[: len(head)] == head and len(joint) > len(head) else []
    if not answer:
        answer = tokenizer.encode(example.output, add_special_tokens=False)
    answer_ids = [*answer, tokenizer.eos_token_id]
    prompt = fit_prompt(head, len(answer_ids), cutoff)
    return prompt + answer_ids, [-100] * len(prompt) + answer_ids


def encode_all(
    examples: Sequence[InstructionExample], lm: Any, cutoff: int
) -> tuple[list[InstructionExample], list[tuple[list[int], list[int]]]]:
    """The examples that fit ``cutoff`` and their encodings; the others are skipped with a
    warning (an answer is never cut)."""
    kept: list[InstructionExample] = []
    rows: list[tuple[list[int], list[int]]] = []
    for example in examples:
        try:
            rows.append(encode(example, lm, cutoff))
        except AnswerTooLong as exc:
            log.warning("skipping %s (%s): %s", example.request_id, example.task, exc)
            continue
        kept.append(example)
    if not rows:
        raise ValueError(f"no example fits the cutoff of {cutoff} tokens")
    return kept, rows


def _collate(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row_ids, row_labels) in enumerate(rows):
        ids[i, : len(row_ids)] = torch.tensor(row_ids)
        labels[i, : len(row_labels)] = torch.tensor(row_labels)
        mask[i, : len(row_ids)] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def _epoch_order(
    rows: Sequence[tuple[list[int], list[int]]],
    strata: Sequence[str],
    micro_batch: int,
    seed: int,
) -> list[int]:
    """A shuffled epoch in which every answer class is spread evenly (each class's rows sit
    at evenly spaced, jittered positions), so a micro-batch of 4 is not all one class and the
    first steps do not teach "always answer C". Inside windows of ``GROUP`` micro-batches the
    rows are sorted by length so a micro-batch pads little (transformers' ``group_by_length``
    idea), then the micro-batches of a window are shuffled; a window holds every class."""
    rng = random.Random(seed)
    by_stratum: dict[str, list[int]] = {}
    for i, stratum in enumerate(strata):
        by_stratum.setdefault(stratum, []).append(i)
    keyed: list[tuple[float, int]] = []
    for members in by_stratum.values():
        rng.shuffle(members)
        n = len(members)
        keyed += [((k + rng.random()) / n, i) for k, i in enumerate(members)]
    order = [i for _, i in sorted(keyed)]
    window = GROUP * micro_batch
    out: list[int] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: len(rows[i][0]))
        batches = [chunk[i : i + micro_batch] for i in range(0, len(chunk), micro_batch)]
        rng.shuffle(batches)
        out += [i for batch in batches for i in batch]
    return out


def train_lora(
    lm: Any,
    examples: Sequence[InstructionExample],
    out_dir: Path,
    settings: LoraSettings | None = None,
    progress: bool = True,
) -> Path:
    """Train a LoRA adapter on ``lm`` (a private :class:`~workers.backends.causal_lm.CausalLM`)
    and save it to ``out_dir/adapter``. Resumes from ``out_dir/checkpoint`` if present."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict
    from tqdm.auto import tqdm
    from transformers import get_cosine_schedule_with_warmup

    cfg = settings or LoraSettings()
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    # the topics deliver examples in no fixed order: sort, so a run is reproducible
    examples = sorted(examples, key=lambda e: (e.task, e.request_id or "", e.input))
    given = len(examples)
    examples, rows = encode_all(examples, lm, cfg.cutoff)
    skipped = given - len(rows)
    strata = [f"{e.task}:{e.output}" for e in examples]
    accumulation = max(1, cfg.effective_batch // cfg.micro_batch)
    micro_per_epoch = math.ceil(len(rows) / cfg.micro_batch)
    total_steps = max(1, math.ceil(micro_per_epoch * cfg.epochs / accumulation))
    if isinstance(lm.model, PeftModel):
        raise ValueError("train on a model without loaded adapters (a fresh private CausalLM)")
    base: Any = lm.model
    model = get_peft_model(
        base,
        LoraConfig(
            r=cfg.r,
            lora_alpha=cfg.alpha,
            lora_dropout=cfg.dropout,
            target_modules=list(cfg.target_modules),
            task_type="CAUSAL_LM",
        ),
    )
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate
    )
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, int(cfg.warmup_ratio * total_steps), total_steps
    )
    checkpoint = out_dir / "checkpoint"
    step = 0
    if (checkpoint / "state.pt").is_file():
        state = torch.load(checkpoint / "state.pt", weights_only=False)
        set_peft_model_state_dict(model, state["adapter"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = state["step"]
        log.info("resuming from step %d of %d", step, total_steps)

    schedule: list[int] = []
    epoch = 0
    while len(schedule) < total_steps * accumulation * cfg.micro_batch:
        schedule += _epoch_order(rows, strata, cfg.micro_batch, cfg.seed + epoch)
        epoch += 1
    model.train()
    bar = tqdm(total=total_steps, initial=step, desc="LoRA steps", disable=not progress)
    pad = lm.tokenizer.pad_token_id or 0
    losses: list[float] = []
    while step < total_steps:
        optimizer.zero_grad()
        for micro in range(accumulation):
            start = (step * accumulation + micro) * cfg.micro_batch
            batch = _collate([rows[i] for i in schedule[start : start + cfg.micro_batch]], pad)
            batch = {k: v.to(model.device) for k, v in batch.items()}
            loss = model(**batch).loss / accumulation
            loss.backward()
            losses.append(loss.detach().item() * accumulation)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{sum(losses[-accumulation:]) / accumulation:.3f}")
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < total_steps:
            from peft import get_peft_model_state_dict

            checkpoint.mkdir(parents=True, exist_ok=True)
            torch.save(
                {
                    "adapter": get_peft_model_state_dict(model),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "step": step,
                },
                checkpoint / "state.pt.tmp",
            )
            (checkpoint / "state.pt.tmp").replace(checkpoint / "state.pt")
    bar.close()
    model.eval()
    adapter_dir = out_dir / "adapter"
    model.save_pretrained(str(adapter_dir))
    summary = {
        "settings": asdict(cfg),
        "steps": total_steps,
        "examples": len(rows),
        "skipped_too_long": skipped,
        "final_loss": sum(losses[-10:]) / max(1, len(losses[-10:])),
    }
    (out_dir / "train.json").write_text(json.dumps(summary, indent=2))
    # leave the caller's model as it was: unload the LoRA layers again
    lm.model = model.unload()
    return adapter_dir

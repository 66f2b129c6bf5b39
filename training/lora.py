"""LoRA fine-tuning of a causal LM on instruction examples (transformers' ``Trainer`` + peft).

Loss on the response tokens only (the answer text plus EOS). Defaults are the paper's
(lr 1e-4, effective batch 128 by accumulation, cosine schedule, 5% warm-up, 3 epochs, r 16,
alpha 16, dropout 0.1, all projection layers and lm_head, cutoff 2048, gradient norm clipped
at 1.0); every one can be overridden, and CPU runs use smaller settings. Adapters for a vLLM
predictor leave lm_head out (:func:`target_modules`).

Why ``transformers.Trainer`` and not trl's ``SFTTrainer``: :func:`encode` tokenizes prompt and
answer together and masks the prompt (-100), the tokens serving reads
(:mod:`workers.backends.prompt_form`); SFTTrainer would re-tokenize text itself (its
``completion_only_loss`` splits prompt and completion its own way) or, handed pre-tokenized
rows, add nothing over Trainer. So the rows go to ``Trainer`` as they are, in our epoch order
(:class:`~training.lora_trainer.EpochOrderSampler`), padded by :func:`_collate`. As the
authors' ``finetune.py`` (HF Trainer too): no weight decay, warm-up steps ``ceil(5% of
steps)``; the loss of an optimizer step weighs every answer token of its micro-batches alike
(Trainer's ``num_items_in_batch``).

Precision: bf16 autocast and gradient checkpointing where CUDA is (bf16 only where the GPU
supports it), fp32 on CPU. Several GPUs: each process runs the same call and Trainer runs
DDP; accumulation shrinks so the effective batch stays ``effective_batch``::

    accelerate launch --num_processes 4 "$(command -v caslie)" retrain ...

Checkpoints (adapter weights, optimizer, scheduler, RNG states, trainer state) every
``checkpoint_every`` optimizer steps, two kept, in a folder that may outlive the run (a
volume); a run that finds one of the same job resumes from it (see :func:`train_lora`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

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
    #: What the loss learns after the prompt: ``output``, the whole gold output (the
    #: paper's: ``"D: Kitchen > Cookware > Pans"``), or ``label``, the answer's label alone
    #: (``"D"``, ``"yes"``, a JSON task's whole object) — the token option scoring reads.
    #: With ``output`` the decision is one token among the option text's copied ones (one of
    #: ~30 for MPC), so a small model learns the copying first (docs/training.md).
    target: Literal["output", "label"] = "output"
    extra: dict[str, Any] = field(default_factory=dict)


TARGETS = ("output", "label")


def encode(
    example: InstructionExample, lm: Any, cutoff: int, target: str = "output"
) -> tuple[list[int], list[int]]:
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
    wanted = example.output if target == "output" else example.label()
    head = tokenizer.encode(text, add_special_tokens=False)
    joint = tokenizer.encode(text + wanted, add_special_tokens=False)
    answer = joint[len(head) :] if joint[: len(head)] == head and len(joint) > len(head) else []
    if not answer:
        answer = tokenizer.encode(wanted, add_special_tokens=False)
    answer_ids = [*answer, tokenizer.eos_token_id]
    prompt = fit_prompt(head, len(answer_ids), cutoff)
    return prompt + answer_ids, [-100] * len(prompt) + answer_ids


def encode_all(
    examples: Sequence[InstructionExample], lm: Any, cutoff: int, target: str = "output"
) -> tuple[list[InstructionExample], list[tuple[list[int], list[int]]]]:
    """The examples that fit ``cutoff`` and their encodings; the others are skipped with a
    warning (an answer is never cut)."""
    kept: list[InstructionExample] = []
    rows: list[tuple[list[int], list[int]]] = []
    for example in examples:
        try:
            rows.append(encode(example, lm, cutoff, target))
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


def _fingerprint(rows: Sequence[tuple[list[int], list[int]]], cfg: LoraSettings, world: int) -> str:
    """What makes checkpoints of one job: its rows, its settings (but how often it
    saves) and the number of processes (the batches each one sees)."""
    settings = {k: v for k, v in asdict(cfg).items() if k != "checkpoint_every"}
    job = json.dumps([rows, settings, world], sort_keys=True, default=str)
    return hashlib.sha256(job.encode()).hexdigest()


def _resumable(folder: Path, fingerprint: str) -> tuple[Path, int] | None:
    """The latest complete checkpoint in ``folder`` and its optimizer step, or None.

    A checkpoint is complete once its ``trainer_state.json`` (Trainer writes it last) reads;
    incomplete ones (a run killed while saving) are removed. ``folder/job.json`` holds the
    job's fingerprint: checkpoints of another job are removed (with a warning), never
    resumed. Only the main process (``RANK`` 0) removes anything."""
    main = int(os.environ.get("RANK", "0")) == 0
    folder.mkdir(parents=True, exist_ok=True)
    job = folder / "job.json"
    found = sorted(
        (p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name[11:].isdigit()),
        key=lambda p: int(p.name[11:]),
    )
    mine = job.is_file() and json.loads(job.read_text()).get("fingerprint") == fingerprint
    if found and not mine:
        log.warning("%s holds checkpoints of another job: starting afresh", folder)
    if main and not mine:
        for path in found:
            shutil.rmtree(path, ignore_errors=True)
        job.write_text(json.dumps({"fingerprint": fingerprint}))
    if not mine:
        return None
    latest: tuple[Path, int] | None = None
    for path in found:
        try:
            step = int(json.loads((path / "trainer_state.json").read_text())["global_step"])
        except (OSError, ValueError, KeyError):
            if main:
                log.warning("removing the incomplete checkpoint %s", path)
                shutil.rmtree(path, ignore_errors=True)
            continue
        latest = (path, step)
    return latest


def train_lora(
    lm: Any,
    examples: Sequence[InstructionExample],
    out_dir: Path,
    settings: LoraSettings | None = None,
    progress: bool = True,
    checkpoint_dir: Path | None = None,
) -> Path:
    """Train a LoRA adapter on ``lm`` (a private :class:`~workers.backends.causal_lm.CausalLM`)
    and save it to ``out_dir/adapter``, with a summary in ``out_dir/train.json``; the
    caller's model is left without LoRA layers. Checkpoints go to ``checkpoint_dir``
    (default ``out_dir/checkpoints``) every ``settings.checkpoint_every`` optimizer steps and
    at the end; a call that finds a complete one there (of the same job: the same rows and
    settings) resumes from the latest. Raises :class:`ValueError` for a model that already
    carries adapters or when no example fits the cutoff."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import PrinterCallback, TrainingArguments

    from training.lora_trainer import EpochOrderSampler, LogLosses, OrderedTrainer, Rows

    cfg = settings or LoraSettings()
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    # the topics deliver examples in no fixed order: sort, so a run is reproducible
    examples = sorted(examples, key=lambda e: (e.task, e.request_id or "", e.input))
    given = len(examples)
    examples, rows = encode_all(examples, lm, cfg.cutoff, cfg.target)
    skipped = given - len(rows)
    strata = [f"{e.task}:{e.output}" for e in examples]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    accumulation = max(1, cfg.effective_batch // (cfg.micro_batch * world))
    micro_per_epoch = math.ceil(len(rows) / (cfg.micro_batch * world))
    total_steps = max(1, math.ceil(math.ceil(micro_per_epoch / accumulation) * cfg.epochs))
    if isinstance(lm.model, PeftModel):
        raise ValueError("train on a model without loaded adapters (a fresh private CausalLM)")
    checkpoints = checkpoint_dir or out_dir / "checkpoints"
    resume = _resumable(checkpoints, _fingerprint(rows, cfg, world))
    if resume is not None:
        log.info("resuming from step %d of %d (%s)", resume[1], total_steps, resume[0])
    model = get_peft_model(
        lm.model,
        LoraConfig(
            r=cfg.r,
            lora_alpha=cfg.alpha,
            lora_dropout=cfg.dropout,
            target_modules=list(cfg.target_modules),
            task_type="CAUSAL_LM",
        ),
    )
    cuda = torch.cuda.is_available()
    args = TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=cfg.micro_batch,
        gradient_accumulation_steps=accumulation,
        max_steps=total_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=math.ceil(cfg.warmup_ratio * total_steps),  # as the authors' Trainer
        max_grad_norm=1.0,
        seed=cfg.seed,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        gradient_checkpointing=cuda,
        gradient_checkpointing_kwargs={"use_reentrant": False} if cuda else None,
        use_cpu=not cuda,
        save_strategy="steps" if cfg.checkpoint_every else "no",
        save_steps=cfg.checkpoint_every or 500,
        save_total_limit=2,
        eval_strategy="no",
        logging_steps=1,
        report_to="none",
        disable_tqdm=not progress,
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_num_workers=0,
    )
    pad = lm.tokenizer.pad_token_id or 0
    trainer = OrderedTrainer(
        model=model,
        args=args,
        train_dataset=Rows(rows),
        data_collator=lambda features: _collate(
            [(f["input_ids"], f["labels"]) for f in features], pad
        ),
        callbacks=[LogLosses()],
        sampler=EpochOrderSampler(rows, strata, cfg.micro_batch, cfg.seed),
    )
    trainer.remove_callback(PrinterCallback)  # LogLosses logs instead of print()
    checkpointing = getattr(lm.model, "is_gradient_checkpointing", False)
    trainer.train(resume_from_checkpoint=str(resume[0]) if resume else None)
    if args.gradient_checkpointing and not checkpointing:  # as the caller had it
        base = lm.model  # transformers 5 renamed it activation checkpointing
        getattr(base, "activation_checkpointing_disable", base.gradient_checkpointing_disable)()
    model.eval()
    adapter_dir = out_dir / "adapter"
    if trainer.is_world_process_zero():
        model.save_pretrained(str(adapter_dir))
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        recent = losses[-math.ceil(10 / accumulation) :]  # at least the last 10 micro-batches
        summary = {
            "settings": asdict(cfg),
            "steps": total_steps,
            "examples": len(rows),
            "skipped_too_long": skipped,
            "final_loss": sum(recent) / max(1, len(recent)),
            "resumed_from_step": resume[1] if resume else 0,
        }
        (out_dir / "train.json").write_text(json.dumps(summary, indent=2))
    # leave the caller's model as it was: unload the LoRA layers again
    lm.model = model.unload()
    return adapter_dir

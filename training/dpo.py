"""OPAL's preference tuning (DPO) of an SFT adapter on its own failed listing drafts.

The round (:func:`preference_round`): the SFT adapter drafts the listings of a training
subset under constrained decoding (each example's category schema,
:func:`~schemas.tasks.lg.listing_json_schema`, as served); every draft is graded on OPAL's
five levels (:class:`Grade`) by its metrics against the reference (:func:`metric_grade`), or
by a judge where one is given (:class:`ListingJudge`: a hook, no model is built in); the
failures, grade <= ``DpoSettings.fail_grade`` (the paper's last two levels by default),
become preference pairs (:func:`preference_pairs`): ``prompt`` the exact text SFT trained on
(``lm.prompt`` of the example's user message), ``chosen`` the reference draft, ``rejected``
the model's. :func:`train_dpo` then trains a trainable copy of the SFT adapter with trl's
``DPOTrainer`` (sigmoid loss, temperature ``beta``) against the SFT adapter frozen as the
reference policy (trl copies a ``PeftModel``'s adapter into a frozen ``ref`` adapter when
``ref_model`` is None), and saves the DPO adapter like :func:`training.lora.train_lora`
(``out_dir/adapter`` and ``out_dir/train.json``).

Grades from the metrics (ROUGE-L F1 of the JSON strings and the example's aspect F1, both
by :mod:`schemas.tasks.metrics`); a draft gets the highest level whose two floors it meets:

====  =====================  ========  =========
level name                   ROUGE-L   aspect F1
====  =====================  ========  =========
5     correctly generated    >= 0.95   1.0
4     mostly correct         >= 0.75   >= 0.75
3     partially correct      >= 0.5    >= 0.5
2     mostly incorrect       >= 0.25   >= 0.25
1     incorrectly generated  below 2's floors, or a draft that does not parse
====  =====================  ========  =========

A reference and a draft that both have no aspect count aspect F1 1.0. Defaults are sized for
a CPU (64 drafts, 8 optimizer steps); the paper's run (200K drafts, 1 epoch) overrides them.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Protocol

import orjson

from schemas.events import AspectSpec
from schemas.tasks.lg import listing_json_schema
from schemas.tasks.metrics import FAILED, aspect_f1, aspects_of, rouge_l
from schemas.tasks.registry import get_task
from training.dataset import InstructionExample

log = logging.getLogger(__name__)


class Grade(IntEnum):
    """OPAL's five judgement levels of a generated listing."""

    INCORRECT = 1
    MOSTLY_INCORRECT = 2
    PARTIAL = 3
    MOSTLY_CORRECT = 4
    CORRECT = 5


#: Level -> (ROUGE-L floor, aspect F1 floor), levels 5 down to 2 (1 has none).
GRADE_FLOORS: Mapping[Grade, tuple[float, float]] = {
    Grade.CORRECT: (0.95, 1.0),
    Grade.MOSTLY_CORRECT: (0.75, 0.75),
    Grade.PARTIAL: (0.5, 0.5),
    Grade.MOSTLY_INCORRECT: (0.25, 0.25),
}


class ListingJudge(Protocol):
    """A judge of listing drafts (the paper's large VLM): one grade per draft, given the
    prompt the model saw, the reference draft and the model's draft (``#failed`` where it
    did not parse)."""

    def grade(
        self, prompts: Sequence[str], references: Sequence[str], outputs: Sequence[str]
    ) -> list[Grade]: ...


@dataclass(frozen=True)
class Graded:
    """One draft and its grades: ``grade`` is the judge's where there is one, else the
    metrics'."""

    example: InstructionExample
    prompt: str
    output: str
    rouge_l: float
    aspect_f1: float
    metric_grade: Grade
    judge_grade: Grade | None = None

    @property
    def grade(self) -> Grade:
        return self.metric_grade if self.judge_grade is None else self.judge_grade


@dataclass(frozen=True)
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str


@dataclass
class DpoSettings:
    beta: float = 0.1
    learning_rate: float = 5e-6
    #: Optimizer steps (0: ``epochs`` over the pairs, the paper's 1 epoch).
    max_steps: int = 8
    epochs: float = 1.0
    micro_batch: int = 2
    effective_batch: int = 2
    warmup_ratio: float = 0.1
    #: Training examples drafted and graded (the paper's 200K).
    subset: int = 64
    #: Drafts graded at most this become pairs (OPAL: the last two levels).
    fail_grade: Grade = Grade.MOSTLY_INCORRECT
    #: Prompt plus answer tokens; a pair longer than this is skipped, never cut.
    cutoff: int = 2048
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def example_aspect_f1(reference: str, output: str) -> float:
    """Aspect F1 of one draft; 1.0 when neither side names an aspect."""
    if output != FAILED and not aspects_of(reference) and not aspects_of(output):
        return 1.0
    return aspect_f1([reference], [output])


def metric_grade(
    rouge: float, aspects: float, floors: Mapping[Grade, tuple[float, float]] = GRADE_FLOORS
) -> Grade:
    """The highest level whose ROUGE-L and aspect F1 floors are both met (table above)."""
    for level in sorted(floors, reverse=True):
        rouge_floor, aspect_floor = floors[level]
        if rouge >= rouge_floor and aspects >= aspect_floor:
            return level
    return Grade.INCORRECT


def listing_schema_of(example: InstructionExample) -> dict[str, Any]:
    """The JSON Schema a listing example's draft is decoded under: its category's aspects
    as its input carries them (``allowed aspects``)."""
    rows = orjson.loads(example.input).get("allowed aspects")
    if not isinstance(rows, list):
        raise ValueError(f"{example.request_id}: the input carries no allowed aspects")
    return listing_json_schema([AspectSpec.model_validate(r) for r in rows])


def is_listing(example: InstructionExample) -> bool:
    return get_task(example.task).family == "opal"


def draft(
    extractor: Any, examples: Sequence[InstructionExample], adapter: str | None, batch: int = 16
) -> list[str]:
    """Each example's draft by ``extractor`` (an
    :class:`~workers.backends.structured.LlmJsonExtractor`) with ``adapter``, in the task's
    canonical text (:meth:`~schemas.tasks.spec.Task.parse`), ``#failed`` where it does not
    parse."""
    out: list[str] = []
    for start in range(0, len(examples), batch):
        chunk = examples[start : start + batch]
        prompts = [e.sample().user_message() for e in chunk]
        texts = extractor.generate_json(prompts, [listing_schema_of(e) for e in chunk], adapter)
        for example, text in zip(chunk, texts, strict=True):
            parsed = get_task(example.task).parse(text, example.options)
            out.append(FAILED if parsed is None else parsed)
    return out


def grade_drafts(
    examples: Sequence[InstructionExample],
    prompts: Sequence[str],
    outputs: Sequence[str],
    judge: ListingJudge | None = None,
    floors: Mapping[Grade, tuple[float, float]] = GRADE_FLOORS,
) -> list[Graded]:
    """Grade each draft against its example's reference (``example.output``)."""
    if not len(examples) == len(prompts) == len(outputs):
        raise ValueError("examples, prompts and outputs differ in length")
    references = [e.output for e in examples]
    judged = judge.grade(prompts, references, outputs) if judge is not None else None
    if judged is not None and len(judged) != len(outputs):
        raise ValueError(f"the judge graded {len(judged)} of {len(outputs)} drafts")
    graded = []
    for i, (example, prompt, output) in enumerate(zip(examples, prompts, outputs, strict=True)):
        rouge = rouge_l([example.output], [output])
        aspects = example_aspect_f1(example.output, output)
        graded.append(
            Graded(
                example,
                prompt,
                output,
                rouge,
                aspects,
                metric_grade(rouge, aspects, floors),
                None if judged is None else Grade(judged[i]),
            )
        )
    return graded


def preference_pairs(
    graded: Sequence[Graded], fail_grade: Grade = Grade.MOSTLY_INCORRECT
) -> list[PreferencePair]:
    """The failures (grade <= ``fail_grade``) as pairs: chosen the reference, rejected the
    model's draft. A draft that did not parse has no text to reject and is left out."""
    return [
        PreferencePair(g.prompt, g.example.output, g.output)
        for g in graded
        if g.grade <= fail_grade and g.output != FAILED and g.output != g.example.output
    ]


def _fitting(pairs: Sequence[PreferencePair], tokenizer: Any, cutoff: int) -> list[PreferencePair]:
    kept = []
    for pair in pairs:
        prompt = len(tokenizer.encode(pair.prompt, add_special_tokens=False))
        longest = max(
            len(tokenizer.encode(pair.chosen, add_special_tokens=False)),
            len(tokenizer.encode(pair.rejected, add_special_tokens=False)),
        )
        if prompt + longest + 1 > cutoff:
            log.warning(
                "skipping a preference pair of %d tokens (cutoff %d)", prompt + longest, cutoff
            )
            continue
        kept.append(pair)
    return kept


def train_dpo(
    lm: Any,
    pairs: Sequence[PreferencePair],
    start_adapter: Path,
    out_dir: Path,
    settings: DpoSettings | None = None,
    progress: bool = True,
) -> Path:
    """Train a copy of the adapter in ``start_adapter`` by DPO on ``pairs`` against that
    adapter frozen; save it to ``out_dir/adapter`` (the trainable adapter only) with
    ``out_dir/train.json``. ``lm`` (a private
    :class:`~workers.backends.causal_lm.CausalLM`) must have no adapter loaded and is left
    so. Raises :class:`ValueError` when no pair fits ``settings.cutoff``."""
    import torch
    from datasets import Dataset
    from peft import PeftModel
    from trl.trainer.dpo_config import DPOConfig
    from trl.trainer.dpo_trainer import DPOTrainer

    cfg = settings or DpoSettings()
    if isinstance(lm.model, PeftModel):
        raise ValueError("train on a model without loaded adapters (a fresh private CausalLM)")
    kept = _fitting(pairs, lm.tokenizer, cfg.cutoff)
    if not kept:
        raise ValueError(f"no preference pair fits the cutoff of {cfg.cutoff} tokens")
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = PeftModel.from_pretrained(lm.model, str(start_adapter), is_trainable=True)
    if lm.tokenizer.pad_token is None:
        lm.tokenizer.pad_token = lm.tokenizer.eos_token
    args = DPOConfig(
        output_dir=str(out_dir / "trainer"),
        loss_type=["sigmoid"],
        beta=cfg.beta,
        learning_rate=cfg.learning_rate,
        max_steps=cfg.max_steps if cfg.max_steps > 0 else -1,
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.micro_batch,
        gradient_accumulation_steps=max(1, cfg.effective_batch // cfg.micro_batch),
        warmup_steps=cfg.warmup_ratio,  # below 1: a share of the steps
        lr_scheduler_type="cosine",
        max_length=cfg.cutoff,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        save_strategy="no",
        report_to=[],
        logging_steps=1,
        disable_tqdm=not progress,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = DPOTrainer(
        model=model,
        ref_model=None,
        args=args,
        train_dataset=Dataset.from_list([asdict(p) for p in kept]),
        processing_class=lm.tokenizer,
    )
    result = trainer.train()
    model.eval()
    adapter_dir = out_dir / "adapter"
    model.save_pretrained(str(adapter_dir), selected_adapters=["default"])
    history = [h for h in trainer.state.log_history if "loss" in h]
    summary = {
        "settings": {**asdict(cfg), "fail_grade": int(cfg.fail_grade)},
        "start_adapter": str(start_adapter),
        "steps": trainer.state.global_step,
        "pairs": len(kept),
        "skipped_too_long": len(pairs) - len(kept),
        "final_loss": history[-1]["loss"] if history else result.training_loss,
    }
    (out_dir / "train.json").write_text(json.dumps(summary, indent=2))
    lm.model = model.unload()  # leave the caller's model bare, as train_lora does
    return adapter_dir


@dataclass(frozen=True)
class DpoRound:
    """What a preference round did: ``adapter`` is None when no draft failed (nothing to
    train on)."""

    adapter: Path | None
    drafted: int
    grades: dict[int, int]
    pairs: int

    def describe(self) -> dict[str, Any]:
        return {
            "drafted": self.drafted,
            "grades": {str(k): v for k, v in sorted(self.grades.items())},
            "pairs": self.pairs,
            "trained": self.adapter is not None,
        }


def preference_round(
    lm: Any,
    extractor: Any,
    train: Sequence[InstructionExample],
    start_adapter: Path,
    out_dir: Path,
    settings: DpoSettings | None = None,
    judge: ListingJudge | None = None,
    progress: bool = True,
) -> DpoRound:
    """Draft the first ``settings.subset`` listing examples of ``train`` (sorted by request
    id: reproducible) with the adapter in ``start_adapter``, grade them, and train DPO on the
    failures (:func:`train_dpo`). ``lm`` must have no adapter loaded; it is left so."""
    cfg = settings or DpoSettings()
    listings = sorted(
        (e for e in train if is_listing(e)), key=lambda e: (e.request_id or "", e.input)
    )[: cfg.subset]
    if not listings:
        return DpoRound(None, 0, {}, 0)
    ref = "dpo-start"
    lm.load_adapter(ref, start_adapter)
    try:
        outputs = draft(extractor, listings, ref)
    finally:
        lm.unload_adapter(ref)
    prompts = [lm.prompt(e.sample().user_message()) for e in listings]
    graded = grade_drafts(listings, prompts, outputs, judge)
    grades = dict(Counter(int(g.grade) for g in graded))
    pairs = preference_pairs(graded, cfg.fail_grade)
    log.info("DPO: %d drafts graded %s, %d pairs", len(graded), grades, len(pairs))
    if not pairs:
        return DpoRound(None, len(graded), grades, 0)
    adapter = train_dpo(lm, pairs, start_adapter, out_dir, cfg, progress)
    return DpoRound(adapter, len(graded), grades, len(pairs))

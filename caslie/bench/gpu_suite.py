"""The GPU suite: the model-bound sections of the pipeline on an accelerator, as one run that
writes JSON (and a markdown summary).

1. CQE: batched yes/no scoring (ours) against the authors' way (one caption at a time, free
   generation), on the same captions, through :func:`caslie.bench.voting.compare_voting`.
2. Predictor: option scoring throughput by batch size, through the predictor stage; once
   with the shipped micro-batch (8 prompts per forward pass) and once with the whole batch
   in one forward pass.
3. Captioner: the transformers VLM backend's images/s by batch size.
4. Training: LoRA tokens/s through :func:`training.lora.train_lora`, with gradient
   checkpointing.

Models are built with random weights and real shapes (:mod:`caslie.bench.gpu_models`), so
the figures are speed, never quality. ``--size tiny`` runs every section on a CPU in well
under a minute; ``--size full`` on CUDA is sized for under 10 minutes on one H200 (each
section also stops adding batch sizes once its time budget is spent, and says so). On a CPU
host ``--size full`` runs the same shapes with fewer inputs, for the GPU/CPU ratio table
(``--compare``).

Needs torch, transformers, peft, Pillow, pydantic and orjson, nothing of Kafka or the
service's settings: ``python -m caslie.bench.gpu_suite`` runs on a bare GPU host with
``PYTHONPATH=.`` (see docs/benchmarks.md, "GPU").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from caslie.bench import gpu_models, voting
from caslie.bench.batching import sweep_stage
from caslie.bench.gpu_inputs import SuiteInputs, build_inputs, caption_inputs
from caslie.bench.gpu_models import Size
from training.lora import LoraSettings, encode, train_lora
from workers.backends.causal_lm import MICRO_BATCH, CausalLM, LlmJudge, LlmOptionScorer
from workers.backends.vlm import TransformersVlmCaptioner
from workers.predictor import PredictorStage
from workers.voter import VoterStage

#: The paper's CQE cost on its GPUs: seconds per instance for its 5 judges.
PAPER_CQE_S_PER_INSTANCE = 0.4
#: Records per voter call: the pipeline's default ``batch.max_batch``.
VOTER_BATCH = 16
#: A micro-batch no stage batch reaches: the whole batch in one forward pass.
ONE_PASS = 1 << 20


@dataclass(frozen=True)
class SuitePlan:
    size: Size
    cqe_captions: int
    #: The authors' generation caps measured: 16 is theirs (and what random weights always
    #: use up); 2 is a judge that says "yes"/"no" and stops, their best case.
    authors_max_new_tokens: tuple[int, ...]
    predictor_requests: int
    predictor_batches: tuple[int, ...]
    captioner_batches: tuple[int, ...]
    #: Images captioned per batch size (at least one full batch).
    captioner_images: int
    caption_tokens: int
    train_examples: int
    train_micro_batch: int
    train_effective_batch: int
    #: Seconds a sweep may take before it stops adding batch sizes.
    section_budget_s: float

    @classmethod
    def for_run(cls, size: Size, cuda: bool) -> SuitePlan:
        if size == "tiny":
            return cls("tiny", 24, (16, 2), 16, (1, 4, 16), (1, 4), 4, 4, 16, 4, 8, 60)
        if cuda:  # an estimated 3-6 minutes on an H200 (docs/benchmarks.md, "GPU")
            return cls(
                "full", 256, (16, 2), 128, (1, 2, 4, 8, 16, 32, 64), (1, 2, 4, 8, 16, 32),
                8, 64, 256, 8, 32, 120,
            )  # fmt: skip
        # the same shapes on a CPU host, with as few inputs as give a per-item figure: an
        # estimated 10 minutes on 2 idle cores (the 1B model reads 5 GB per decoded token)
        return cls("full", 8, (16, 2), 4, (1, 4), (1, 2), 2, 16, 8, 4, 8, 300)


def machine(device: str, dtype: Any) -> dict[str, Any]:
    import peft
    import torch
    import transformers

    return {
        "device": device,
        "device_name": (
            torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or "cpu"
        ),
        "cuda": torch.version.cuda if device == "cuda" else None,
        "dtype": str(dtype).removeprefix("torch."),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
    }


def _budgeted(
    sizes: Sequence[int], budget_s: float, measure: Callable[[Sequence[int]], dict[str, Any]]
) -> dict[str, Any]:
    """``measure`` over ``sizes`` one size at a time until ``budget_s`` is spent; rows of the
    sizes measured, speed-ups against the smallest, and which sizes were left out."""
    began = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for size in sizes:
        if rows and time.perf_counter() - began > budget_s:
            break
        rows += measure([size])["rows"]
    base = rows[0]["records_per_s"]
    best = max(r["records_per_s"] for r in rows)
    for row in rows:
        row["speedup_vs_smallest"] = row["records_per_s"] / base
    return {
        "rows": rows,
        "best_records_per_s": best,
        "best_batch_size": next(r["batch_size"] for r in rows if r["records_per_s"] == best),
        "left_out": list(sizes[len(rows) :]),
    }


def cqe_section(lm: CausalLM, inputs: SuiteInputs, plan: SuitePlan) -> dict[str, Any]:
    voter = VoterStage([LlmJudge(lm)], "mv")
    voting.compare_voting(voter, inputs.captioned[:2], VOTER_BATCH, 2)  # warm: not timed
    rows = []
    for tokens in plan.authors_max_new_tokens:
        result = voting.compare_voting(voter, inputs.captioned, VOTER_BATCH, tokens)
        result["authors_five_judges_s_per_caption_estimate"] = 5 * result["authors_s_per_caption"]
        rows.append(result)
    return {
        "captions": rows[0]["captions"],
        "voter_batch": VOTER_BATCH,
        "micro_batch": lm.micro_batch,
        "rows": rows,
        "paper_s_per_instance_5_judges": PAPER_CQE_S_PER_INSTANCE,
    }


def predictor_section(lm: CausalLM, inputs: SuiteInputs, plan: SuitePlan) -> dict[str, Any]:
    stage = PredictorStage(LlmOptionScorer(lm))
    records = inputs.enriched[: plan.predictor_requests]
    sweep_stage(stage, records[:2], [2])  # warm: not timed
    out: dict[str, Any] = {"requests": len(records)}
    for name, micro in (("shipped_micro_batch", MICRO_BATCH), ("one_forward_pass", ONE_PASS)):
        lm.micro_batch = micro
        out[name] = _budgeted(
            plan.predictor_batches,
            plan.section_budget_s / 2,
            lambda sizes: sweep_stage(stage, records, sizes),
        )
    lm.micro_batch = MICRO_BATCH
    return out


def captioner_section(
    size: Size, tokenizer: Any, device: str, dtype: Any, inputs: SuiteInputs, plan: SuitePlan
) -> dict[str, Any]:
    model, processor = gpu_models.vlm(size, tokenizer, device, dtype)
    captioner = TransformersVlmCaptioner(
        f"llava-{size}", plan.caption_tokens, model=model, processor=processor
    )
    pool = caption_inputs(inputs.requests, max(plan.captioner_batches) * 2)
    captioner.caption(pool[:1])  # warm: not timed

    def measure(sizes: Sequence[int]) -> dict[str, Any]:
        batch = sizes[0]
        items = pool[: max(batch, plan.captioner_images)]
        began = time.perf_counter()
        for start in range(0, len(items), batch):
            captioner.caption(items[start : start + batch])
        seconds = time.perf_counter() - began
        row = {"batch_size": batch, "records": len(items), "seconds": seconds}
        return {"rows": [{**row, "records_per_s": len(items) / seconds}]}

    result = _budgeted(plan.captioner_batches, plan.section_budget_s, measure)
    return {
        "model": f"LLaVA ({size}): CLIP vision tower + Llama text model",
        "parameters": gpu_models.parameters(model),
        "max_new_tokens": plan.caption_tokens,
        "image_tokens": (gpu_models.VISION_SHAPES[size].image_size // 14) ** 2
        if size == "full"
        else None,
        **result,
    }


def _checkpointing(model: Any, on: bool) -> None:
    """Gradient (activation) checkpointing on or off, by the name this transformers has."""
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x
        if on:
            model.activation_checkpointing_enable({"use_reentrant": False})
        else:
            model.activation_checkpointing_disable()
    elif on:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_disable()
    model.config.use_cache = not on


def training_section(lm: CausalLM, inputs: SuiteInputs, plan: SuitePlan) -> dict[str, Any]:
    """Timed through ``train_lora`` as the retrainer calls it, so the figure includes
    wrapping the model in LoRA layers and saving the adapter (its size is reported)."""
    _checkpointing(lm.model, True)
    settings = LoraSettings(
        micro_batch=plan.train_micro_batch,
        effective_batch=plan.train_effective_batch,
        epochs=1.0,
        checkpoint_every=0,
    )
    examples = inputs.examples[: plan.train_examples]
    rows = [encode(e, lm, settings.cutoff) for e in examples]
    tokens = sum(len(ids) for ids, _ in rows)
    learned = sum(label != -100 for _, labels in rows for label in labels)
    with tempfile.TemporaryDirectory(prefix="gpu-suite-lora-") as tmp:
        warm = replace(settings, effective_batch=plan.train_micro_batch)
        train_lora(lm, examples[: plan.train_micro_batch], Path(tmp) / "warm", warm, False)
        began = time.perf_counter()
        adapter = train_lora(lm, examples, Path(tmp) / "run", settings, progress=False)
        seconds = time.perf_counter() - began
        adapter_bytes = sum(f.stat().st_size for f in adapter.rglob("*") if f.is_file())
    _checkpointing(lm.model, False)
    return {
        "examples": len(examples),
        "tokens": tokens,
        "answer_tokens": learned,
        "optimizer_steps": -(-len(examples) // plan.train_effective_batch),
        "micro_batch": plan.train_micro_batch,
        "effective_batch": plan.train_effective_batch,
        "lora_r": settings.r,
        "target_modules": list(settings.target_modules),
        "gradient_checkpointing": True,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "examples_per_s": len(examples) / seconds,
        "adapter_mb": adapter_bytes / 2**20,
    }


def run_suite(
    size: Size,
    device: str = "auto",
    tokenizer_dir: Path | None = None,
    work_dir: Path | None = None,
    log: Callable[[str], None] = lambda _m: None,
    command: str = "python -m caslie.bench.gpu_suite",
) -> dict[str, Any]:
    """Every section, in one process, on one device; the report as a JSON-ready dict."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda, but torch sees no CUDA device")
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    plan = SuitePlan.for_run(size, device == "cuda")
    began = time.perf_counter()
    report: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        "machine": machine(device, dtype),
        "plan": asdict(plan),
    }
    with tempfile.TemporaryDirectory(prefix="gpu-suite-") as tmp:
        folder = work_dir or Path(tmp)
        inputs = build_inputs(
            folder / "images", plan.cqe_captions, max(plan.predictor_requests, plan.train_examples)
        )
        tokenizer = gpu_models.load_tokenizer(tokenizer_dir)
        timed = time.perf_counter()
        model = gpu_models.causal_lm(size, tokenizer, device, dtype)
        report["causal_lm"] = {
            "shape": asdict(gpu_models.LM_SHAPES[size]),
            "parameters": gpu_models.parameters(model),
            "tokenizer_tokens": len(tokenizer),
            "build_s": time.perf_counter() - timed,
        }
        lm = CausalLM(f"llama-{size}", folder, model=model, tokenizer=tokenizer, private=True)
        sections: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("cqe", lambda: cqe_section(lm, inputs, plan)),
            ("predictor", lambda: predictor_section(lm, inputs, plan)),
            (
                "captioner",
                lambda: captioner_section(size, tokenizer, device, dtype, inputs, plan),
            ),
            ("training", lambda: training_section(lm, inputs, plan)),
        ]
        for name, section in sections:
            log(f"{name} ...")
            timed = time.perf_counter()
            report[name] = section()
            report[name]["section_s"] = time.perf_counter() - timed
            log(f"{name}: {report[name]['section_s']:.1f} s")
            if device == "cuda":
                torch.cuda.empty_cache()
    if device == "cuda":
        report["machine"]["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    report["summary"] = summary(report)
    report["wall_s"] = time.perf_counter() - began
    return report


def summary(report: dict[str, Any]) -> dict[str, float]:
    """One figure per section, higher is better except the ``_s_`` (seconds) ones: what the
    GPU/CPU ratio table compares."""
    cqe = report["cqe"]["rows"][0]
    return {
        "cqe_batched_s_per_caption": cqe["batched_s_per_caption"],
        "cqe_authors_s_per_caption": cqe["authors_s_per_caption"],
        "cqe_speedup": cqe["speedup"],
        "predictor_best_requests_per_s": max(
            report["predictor"][k]["best_records_per_s"]
            for k in ("shipped_micro_batch", "one_forward_pass")
        ),
        "captioner_best_images_per_s": report["captioner"]["best_records_per_s"],
        "training_tokens_per_s": report["training"]["tokens_per_s"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    from caslie.bench.gpu_report import markdown

    parser = argparse.ArgumentParser(
        prog="python -m caslie.bench.gpu_suite", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size", choices=("tiny", "full"), default="full")
    parser.add_argument("--tiny", action="store_const", const="tiny", dest="size")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    parser.add_argument("--out", type=Path, default=Path("gpu-suite.json"))
    parser.add_argument("--markdown", type=Path, help="default: --out with .md")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer folder (default: SmolLM2's)")
    parser.add_argument("--compare", type=Path, help="a CPU run's JSON, for the ratio table")
    parser.add_argument(
        "--save-tokenizer", type=Path, help="write the default tokenizer to a folder and exit"
    )
    parser.add_argument(
        "--render", type=Path, help="only write the markdown of an earlier run's JSON (--out)"
    )
    args = parser.parse_args(argv)
    if args.save_tokenizer:
        gpu_models.load_tokenizer(None).save_pretrained(args.save_tokenizer)
        print(f"wrote {args.save_tokenizer}")
        return 0
    cpu = json.loads(args.compare.read_text()) if args.compare else None
    if args.render:
        text = markdown(json.loads(args.render.read_text()), cpu)
        (args.markdown or args.render.with_suffix(".md")).write_text(text)
        print(text)
        return 0
    command = " ".join(["python -m caslie.bench.gpu_suite", *(argv or sys.argv[1:])])
    report = run_suite(
        args.size, args.device, args.tokenizer, log=lambda m: print(m, flush=True), command=command
    )
    args.out.write_text(json.dumps(report, indent=2))
    text = markdown(report, cpu)
    (args.markdown or args.out.with_suffix(".md")).write_text(text)
    print(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

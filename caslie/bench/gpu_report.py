"""The markdown summary of a GPU-suite report, and the GPU/CPU ratio table of two runs."""

from __future__ import annotations

from typing import Any

#: (summary key, label, True where higher is better)
RATIOS = (
    ("cqe_batched_s_per_caption", "CQE batched, s per caption", False),
    ("cqe_authors_s_per_caption", "CQE the authors' way (16 tokens), s per caption", False),
    ("predictor_best_requests_per_s", "predictor, best requests/s", True),
    ("captioner_best_images_per_s", "captioner, best images/s", True),
    ("training_tokens_per_s", "LoRA training, tokens/s", True),
)


def ratio(key: str, ours: dict[str, float], other: dict[str, float]) -> float:
    """How many times faster ``ours`` is than ``other`` on one summary figure."""
    higher_is_better = next(h for k, _, h in RATIOS if k == key)
    a, b = ours[key], other[key]
    return a / b if higher_is_better else b / a


def _sweep(title: str, unit: str, sweep: dict[str, Any]) -> list[str]:
    lines = [f"| {title} batch | {unit} | speed-up vs batch 1 |", "|---|---|---|"]
    lines += [
        f"| {r['batch_size']} | {r['records_per_s']:.2f} | {r['speedup_vs_smallest']:.2f}x |"
        for r in sweep["rows"]
    ]
    if sweep["left_out"]:
        lines.append(f"\nNot measured (section budget spent): batch sizes {sweep['left_out']}.")
    return lines


def markdown(report: dict[str, Any], cpu: dict[str, Any] | None = None) -> str:
    m, lm = report["machine"], report["causal_lm"]
    cqe, pred, cap, train = (report[k] for k in ("cqe", "predictor", "captioner", "training"))
    lines = [
        f"# caslie GPU suite ({report['started_at']}, size {report['plan']['size']})",
        "",
        f"Device: **{m['device_name']}** ({m['device']}, {m['dtype']}, CUDA {m['cuda']}), "
        f"{m['cpus']} CPUs, torch {m['torch']} ({m['torch_threads']} threads), transformers "
        f"{m['transformers']}, peft {m['peft']}, Python {m['python']}. Causal LM: "
        f"{lm['parameters'] / 1e6:.1f} M parameters, random weights. Command: "
        f"`{report['command']}`. Wall {report['wall_s']:.0f} s.",
        "",
        f"## CQE: batched scoring against the authors' way ({cqe['captions']} captions, 1 judge)",
        "",
        "| authors' max new tokens | authors s/caption | batched s/caption | speed-up "
        "| authors x5 judges s/caption (estimate) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['authors_max_new_tokens']} | {r['authors_s_per_caption']:.4f} | "
        f"{r['batched_s_per_caption']:.4f} | {r['speedup']:.1f}x | "
        f"{r['authors_five_judges_s_per_caption_estimate']:.3f} |"
        for r in cqe["rows"]
    ]
    lines += [
        "",
        f"The paper reports {cqe['paper_s_per_instance_5_judges']} s per instance for its 5 "
        f"judges. Voter batches of {cqe['voter_batch']} records, {cqe['micro_batch']} prompts "
        "per forward pass.",
        "",
        f"## Predictor: option scoring by batch size ({pred['requests']} requests)",
        "",
        "Shipped micro-batch (8 prompts per forward pass):",
        "",
        *_sweep("predictor", "requests/s", pred["shipped_micro_batch"]),
        "",
        "Whole batch in one forward pass:",
        "",
        *_sweep("predictor", "requests/s", pred["one_forward_pass"]),
        "",
        f"## Captioner: VLM images/s by batch size ({cap['max_new_tokens']} new tokens each)",
        "",
        f"{cap['model']}, {cap['parameters'] / 1e6:.1f} M parameters.",
        "",
        *_sweep("captioner", "images/s", cap),
        "",
        "## LoRA training",
        "",
        "| examples | tokens | micro-batch | effective batch | steps | seconds | tokens/s |",
        "|---|---|---|---|---|---|---|",
        f"| {train['examples']} | {train['tokens']} | {train['micro_batch']} | "
        f"{train['effective_batch']} | {train['optimizer_steps']} | {train['seconds']:.1f} | "
        f"{train['tokens_per_s']:.0f} |",
        "",
        f"r {train['lora_r']} on {', '.join(train['target_modules'])}; gradient checkpointing "
        f"{'on' if train['gradient_checkpointing'] else 'off'}. Timed through `train_lora` "
        f"(LoRA wrapping and saving the {train['adapter_mb']:.0f} MB adapter included).",
    ]
    if cpu is not None:
        lines += ["", *ratio_table(report, cpu)]
    return "\n".join(lines) + "\n"


def ratio_table(report: dict[str, Any], cpu: dict[str, Any]) -> list[str]:
    ours, theirs = report["summary"], cpu["summary"]
    lines = [
        f"## {report['machine']['device_name']} against {cpu['machine']['device_name']} "
        f"({cpu['machine']['cpus']} CPUs, size {cpu['plan']['size']})",
        "",
        "| figure | this run | CPU run | times faster |",
        "|---|---|---|---|",
    ]
    for key, label, _ in RATIOS:
        lines.append(
            f"| {label} | {ours[key]:.4g} | {theirs[key]:.4g} | {ratio(key, ours, theirs):.1f}x |"
        )
    return lines

"""OPAL table (issue 17): base, SFT, SFT on refined data, SFT+DPO on the held-out test split.

Run: PYTHONPATH=. python scripts/opal_table.py PREPARED OUT (PREPARED: a caslie prepare folder
beside the generator's output in PREPARED/../syn; docs/training.md, "OPAL's table").
"""

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from caslie.prepare import read_prepared
from schemas.tasks import lg
from streams.config import load_settings
from training.dataset import assemble
from training.dpo import DpoSettings, preference_round
from training.evaluate import answerers, evaluate
from training.lora import PROJECTIONS, LoraSettings, train_lora
from training.refine import refine_examples

prep, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
enriched, labels = read_prepared(prep)
examples = [e for e in assemble(enriched, labels) if e.task == "LG"]
clean_train = [e for e in examples if e.split == "train"]
test = [e for e in examples if e.split == "test"]
# OPAL trains on what sellers wrote: the seller's title and aspects (schema keys only) are the
# training targets; the test split keeps the clean references (what the photos show)
refs: dict[str, dict[str, Any]] = {}
for line in (prep.parent / "syn" / "listings" / "references.jsonl").read_text().splitlines():
    r = json.loads(line)
    refs[f"auto-lg:{r['listing_id']}"] = r
train = []
for e in clean_train:
    r = refs[e.request_id or ""]
    names = [a.name for a in lg.sample_aspects(e.sample())]
    aspects = {k: v for k, v in r["raw_aspects"].items() if k in names}
    train.append(
        dataclasses.replace(e, output=lg.canonical_listing(r["raw_title"], aspects, names))
    )
print(f"{len(train)} train, {len(test)} test", flush=True)
print("a seller target:", train[0].output, flush=True)
models = answerers(load_settings())
lm, scorer, extractor = models.lm, models.scorer, models.extractor
lora = LoraSettings(
    learning_rate=1e-3,
    effective_batch=4,
    micro_batch=4,
    epochs=2.0,
    target_modules=PROJECTIONS,
    checkpoint_every=0,
    seed=0,
)
rows: dict[str, dict[str, Any]] = {}
timings: dict[str, float] = {}


def score(name: str, adapter_dir: Path | None) -> None:
    began = time.perf_counter()
    ref = None
    if adapter_dir is not None:
        ref = f"{name}@table"
        lm.load_adapter(ref, adapter_dir)
    try:
        result = evaluate(scorer, test, adapter=ref, extractor=extractor)["LG"]
    finally:
        if ref is not None:
            lm.unload_adapter(ref)
    rows[name] = {
        "rouge_l": result.strict,
        **(result.extra or {}),
        "failures": result.failures,
        "n": result.n,
        "per_category": result.per_category,
    }
    timings[f"eval {name}"] = time.perf_counter() - began
    print(name, {k: v for k, v in rows[name].items() if k != "per_category"}, flush=True)


T = TypeVar("T")


def timed(label: str, fn: Callable[[], T]) -> T:
    began = time.perf_counter()
    value = fn()
    timings[label] = time.perf_counter() - began
    print(f"{label}: {timings[label]:.0f}s", flush=True)
    return value


score("base", None)
sft = timed("train sft", lambda: train_lora(lm, train, out / "sft", lora, progress=False))
score("sft", sft)
refined, summary = refine_examples(train)
print("refinement", summary, flush=True)
sft_refined = timed(
    "train sft-refined", lambda: train_lora(lm, refined, out / "sft-refined", lora, progress=False)
)
score("sft-refined", sft_refined)
dpo = DpoSettings(max_steps=8, subset=32, seed=0)
round_ = timed(
    "dpo", lambda: preference_round(lm, extractor, train, sft, out / "dpo", dpo, progress=False)
)
print("dpo round", round_.describe(), flush=True)
if round_.adapter is not None:
    score("sft+dpo", round_.adapter)
clean = timed(
    "train sft-clean", lambda: train_lora(lm, clean_train, out / "sft-clean", lora, progress=False)
)
score("sft-clean (oracle)", clean)
(out / "table.json").write_text(
    json.dumps(
        {
            "rows": rows,
            "timings_s": timings,
            "train": len(train),
            "test": len(test),
            "refinement": str(summary),  # its counters have tuple keys
            "dpo": round_.describe(),
            "lora": {
                "lr": lora.learning_rate,
                "epochs": lora.epochs,
                "effective_batch": lora.effective_batch,
                "r": lora.r,
            },
        },
        indent=2,
        default=str,
    )
)
print("wrote", out / "table.json")

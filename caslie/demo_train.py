"""``caslie demo --train``: after the demo's answers, one retraining cycle on a small synthetic
shop, then the demo's queries again, answers before and after side by side.

The cycle is the one a user runs by hand (docs/training.md), in this process and on the demo's
broker: ``python -m training.synthetic --claims 0 --shop N`` (``generate_shop``), ``caslie
prepare`` (captioner and voter without a broker), the enriched records and labels produced to
their topics, ``caslie dataset accumulate``, and ``caslie retrain`` with settings that learn
on a CPU in a minute or two (lr 1e-3, effective batch 4, one epoch, no lm_head adapter) and
``--margin -1``, so the first version publishes whatever the validation says: the demo shows
the loop, not a quality gate (a few validation examples say little). The registry is a fresh
folder per run (:func:`fresh_registry`), so the first answers are the base model's and the
predictor the demo runs loads the announced version live.

The shop trains CASLIE's product tasks (AP, CC, PRP, PSI, MPC, SR); the sample's SA query is
answered by the same generalist adapter, which never saw SA: its row shows transfer, if any.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from caslie.exit_codes import ExitCode
from streams.config import Settings

#: The adapter the demo trains: the predictor's default, so every task uses it once published.
ADAPTER = "generalist"
#: Re-asks of a query whose answer still came from the previous adapter (the predictor switches
#: between batches, a moment after the announcement).
ASK_ROUNDS = 4

Ask = Callable[[list[dict[str, Any]]], dict[str, dict[str, Any]]]


def fresh_registry(settings: Settings, run_id: str) -> Settings:
    """``settings`` with an empty adapter registry of its own under the cache folder (the
    dataset and the checkpoints live beside it), and the predictor's default adapter
    :data:`ADAPTER`."""
    registry = settings.cache_dir / "demo-train" / run_id / "registry"
    registry.mkdir(parents=True, exist_ok=True)
    predictor = settings.predictor.model_copy(
        update={"registry": str(registry), "default_adapter": ADAPTER}
    )
    return settings.model_copy(update={"predictor": predictor})


def train_and_ask_again(
    settings: Settings,
    queries: list[dict[str, Any]],
    before: dict[str, dict[str, Any]],
    shop: int,
    ask: Ask,
    console: Console,
) -> int:
    """Train and publish (module doc), ask ``queries`` again with ``ask`` (it produces them
    and returns request id -> prediction) and print each task's answer before and after with
    the adapter that gave it. Returns the exit code: 0, or retrain's codes (7 no training
    data, 6 not published), or 5 when a query got no answer from the new version."""
    from caslie.prepare import prepare
    from streams.produce import produce_lines
    from training.accumulate.bounded import accumulate
    from training.lora import LoraSettings, target_modules
    from training.retrain import TrainingDataError, retrain_cycle
    from training.synthetic.shop import generate_shop

    assert settings.predictor.registry is not None  # fresh_registry set it
    work = Path(settings.predictor.registry).parent
    started = time.monotonic()
    console.print(f"training: a synthetic shop of {shop} queries per task -> {work}")
    generate_shop(work / "synthetic" / "shop", shop, seed=0).write()
    records, labels = prepare(work / "synthetic", work / "prepared", settings, 0.1)
    for logical, name in (("enriched", "enriched.jsonl"), ("labels", "labels.jsonl")):
        with open(work / "prepared" / name, "rb") as lines:
            report = produce_lines(settings, logical, lines)
        if report.invalid:
            console.print(f"[red]{len(report.invalid)} invalid {logical} lines[/]")
            return ExitCode.INVALID_INPUT
    rows = accumulate(settings, threading.Event(), timeout_s=300).rows_written
    console.print(
        f"training: {records} enriched records and {labels} labels prepared, {rows} dataset "
        f"rows accumulated ({time.monotonic() - started:.0f}s); retraining {ADAPTER}"
    )
    lora = LoraSettings(
        learning_rate=1e-3,
        epochs=1,
        effective_batch=4,
        micro_batch=4,
        target_modules=target_modules(settings.predictor.backend, False),
    )
    try:
        result = retrain_cycle(settings, ADAPTER, lora, margin=-1.0)
    except TrainingDataError as exc:
        console.print(f"[red]training: {exc}[/]")
        return ExitCode.NO_TRAINING_DATA
    if result.published is None:
        console.print(f"[red]training: the gate kept {result.incumbent_ref}[/]")
        return ExitCode.KEPT_INCUMBENT
    ref = result.published.ref
    console.print(
        f"training: published {ref} ({result.examples.get('train', 0)} training examples) "
        f"after {time.monotonic() - started:.0f}s; asking the sample's queries again"
    )
    after = _ask_until_served(queries, ref, ask)
    _compare(console, queries, before, after)
    missing = [q["task"] for q in queries if after.get(q["request_id"], {}).get("adapter") != ref]
    total = time.monotonic() - started
    if missing:
        console.print(f"[red]no answer from {ref} for {missing} after {total:.0f}s[/]")
        return ExitCode.INCOMPLETE
    console.print(f"[green]{len(queries)} queries answered by {ref}; training took {total:.0f}s[/]")
    return ExitCode.OK


def _ask_until_served(queries: list[dict[str, Any]], ref: str, ask: Ask) -> dict[str, Any]:
    """Original request id -> the prediction ``ref`` made for a copy of that query (a fresh
    request id per round; a copy answered by the old version is asked again)."""
    after: dict[str, dict[str, Any]] = {}
    for round_no in range(1, ASK_ROUNDS + 1):
        pending = [q for q in queries if after.get(q["request_id"], {}).get("adapter") != ref]
        if not pending:
            break
        if round_no > 1:
            time.sleep(2.0)  # the predictor switches between batches
        copies = {f"{q['request_id']}-after{round_no}": q for q in pending}
        got = ask([{**q, "request_id": rid} for rid, q in copies.items()])
        for rid, query in copies.items():
            if rid in got:
                after[query["request_id"]] = got[rid]
    return after


def _answer(prediction: dict[str, Any] | None) -> str:
    if prediction is None:
        return "(none)"
    text = prediction.get("option") or prediction.get("label") or prediction.get("reason", "")
    return escape(f"{text}  [{prediction.get('adapter', '?')}]")  # no rich markup


def _compare(
    console: Console,
    queries: list[dict[str, Any]],
    before: dict[str, dict[str, Any]],
    after: dict[str, dict[str, Any]],
) -> None:
    table = Table(title="caslie demo --train: answers before and after", show_lines=True)
    for column in ("task", "request", "before [adapter]", "after [adapter]"):
        table.add_column(column, overflow="fold")
    for query in queries:
        rid = query["request_id"]
        table.add_row(query["task"], rid, _answer(before.get(rid)), _answer(after.get(rid)))
    console.print(table)

"""Stage throughput by batch size, on the same records for every size."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from caslie.bench.stage_runs import run_stage
from streams.stage import Stage

if TYPE_CHECKING:  # the Kafka-free sweep below must not import the stage builders
    from caslie.bench.inprocess import Stages

FLAT_SHARE = 0.9  # "flattens": the smallest batch size within 10% of the best throughput


def sweep(
    stages: Stages, name: str, records: Sequence[BaseModel], sizes: Sequence[int]
) -> dict[str, Any]:
    return sweep_stage(stages.by_name(name), records, sizes, stages.forget_captions)


def sweep_stage(
    stage: Stage,
    records: Sequence[BaseModel],
    sizes: Sequence[int],
    before_each: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """``records`` through ``stage`` once per batch size; ``before_each`` runs before each
    size (to empty a cache)."""
    rows = []
    for size in sizes:
        before_each()
        run = run_stage(stage, records, size)
        rows.append(
            {
                "batch_size": size,
                "records": len(records),
                "seconds": run.seconds,
                "records_per_s": len(records) / run.seconds,
            }
        )
    best = max(r["records_per_s"] for r in rows)
    flat = next(r["batch_size"] for r in rows if r["records_per_s"] >= FLAT_SHARE * best)
    base = rows[0]["records_per_s"]
    for row in rows:
        row["speedup_vs_smallest"] = row["records_per_s"] / base
    return {"rows": rows, "flattens_at": flat}

"""Run every benchmark section on one broker and one set of loaded models; variants that are
compared always run in the same invocation, on the same inputs, so the ratios hold on a noisy,
shared machine."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from rich.console import Console

from caslie.bench import batching, catalog, ceiling, kafka_layer, pipeline, voting
from caslie.bench.inprocess import Stages, run_chain
from caslie.bench.stage_runs import run_stage
from caslie.bench.workers import WorkerProcesses
from caslie.bench.workload import build_workload
from caslie.stages import build_captioner, build_voter
from schemas.events import parse_query
from streams.broker import EmbeddedBroker
from streams.clients import create_topics, wait_for_broker
from streams.config import Settings
from streams.topics import WORKERS

PIPELINE_STAGES = WORKERS
#: The model workers (everything after the router).
WORKER_STAGES = WORKERS[1:]
THROUGHPUT_GOAL = 0.85


@dataclass(frozen=True)
class BenchPlan:
    """How much work each section does; ``quick`` fits in a few minutes on two cores."""

    per_task: int  # requests of each task through both sides of the overhead comparison
    latency_requests: int  # offered at a fixed load
    load_share: float  # the fixed load, as a share of the measured pipeline throughput
    voting_records: int
    batch_sizes: tuple[int, ...]
    batching_records: int
    kafka_records: int
    timeout_s: float = 900
    catalog_products: int = 0  # products of the router-state section (0: skipped)
    ceiling_records: int = 20_000  # records of each kind through the runner and the bare loop

    @classmethod
    def quick(cls) -> BenchPlan:
        return cls(
            5, 14, 0.5, 21, (1, 4, 16), 16, 1000, catalog_products=20_000, ceiling_records=5000
        )

    @classmethod
    def full(cls) -> BenchPlan:
        return cls(40, 56, 0.5, 70, (1, 4, 16, 32), 64, 5000, catalog_products=1_000_000)


@contextlib.contextmanager
def _broker(settings: Settings, external: bool, log_dir: Path) -> Iterator[Settings]:
    if external:
        yield settings
        return
    broker = EmbeddedBroker(log_file=log_dir / "broker.log").start()
    try:
        yield settings.model_copy(update={"bootstrap_servers": broker.bootstrap_servers})
    finally:
        broker.stop()


def machine() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    with contextlib.suppress(OSError):
        meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0]
        info["memory_kb"] = int(meminfo.split()[1])
    return info


def _streaming_sections(
    settings: Settings,
    plan: BenchPlan,
    external: bool,
    prefix: str,
    work_dir: Path,
    console: Console,
    report: dict[str, Any],
) -> None:
    """The runner against the bare client (``ceiling``) and the router's state at catalog
    scale (``catalog``): the streaming layer's sections, no model in them."""
    sample = build_workload(work_dir / "ceiling-images", 1, first_variant=950)
    samples: dict[str, BaseModel] = {
        "queries": parse_query(sample.queries[0]),
        "requests": sample.requests[0],
    }
    console.print(f"[bold]ceiling[/]: runner against the bare client, {plan.ceiling_records} each")
    # exactly-once needs Apache Kafka: the embedded broker shows aborted transactions
    report["ceiling"] = ceiling.measure(
        settings.model_copy(update={"topic_prefix": f"{prefix}ceiling."}),
        samples,
        plan.ceiling_records,
        exactly_once=external,
    )
    if plan.catalog_products <= 0:
        return
    console.print(f"[bold]catalog[/]: router state with {plan.catalog_products} products")
    catalog_settings = settings.model_copy(update={"topic_prefix": f"{prefix}catalog."})
    create_topics(catalog_settings)
    report["catalog"] = catalog.measure(
        catalog_settings, plan.catalog_products, work_dir / "catalog", plan.timeout_s
    )


def run_streaming_bench(
    settings: Settings, plan: BenchPlan, external: bool, work_dir: Path, console: Console
) -> dict[str, Any]:
    """The streaming sections alone (no models, and no torch import: its memory would count
    in the resident memory measured). The embedded broker's watermarks do not match the
    offsets it hands out, so a restart there rebuilds, and it cannot run exactly-once:
    measure on Apache Kafka with ``--external``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    report: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "plan": plan.__dict__,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "broker": "external" if external else "embedded (tansu, memory storage)",
    }
    with _broker(settings, external, work_dir) as settings:
        wait_for_broker(settings, timeout=30)
        prefix = f"bench-{uuid.uuid4().hex[:6]}."
        _streaming_sections(settings, plan, external, prefix, work_dir, console, report)
    report["wall_s"] = time.perf_counter() - began
    return report


def run_voting_bench(
    settings: Settings, plan: BenchPlan, external: bool, work_dir: Path, console: Console
) -> dict[str, Any]:
    """The voting comparison alone (``caslie bench --only voting``): the captioner and the
    voter only, no broker (``external`` is ignored), on the captions of the same workload
    and ``voting_records`` as the whole run's voting section, after one untimed warm request
    per task."""
    del external
    work_dir.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    report: dict[str, Any] = {
        "only": "voting",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "plan": plan.__dict__,
        "machine": machine(),
        "models": {"captioner": settings.captioner.backend, "judges": settings.voter.judges},
    }
    images = work_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    settings = settings.with_file_root(images)
    warm = build_workload(images, 1, first_variant=900)
    main = build_workload(images, plan.per_task, first_variant=0)
    console.print("[bold]loading models[/] (captioner, voter)")
    timed = time.perf_counter()
    captioner, voter = build_captioner(settings), build_voter(settings)
    report["model_load_s"] = time.perf_counter() - timed
    batch = settings.batch.max_batch
    run_stage(voter, run_stage(captioner, warm.requests, batch).outputs, batch)  # not timed
    captioned = run_stage(captioner, main.requests, batch).outputs[: plan.voting_records]
    console.print("[bold]voting[/]: the authors' way against batched scoring")
    report["voting"] = voting.compare_voting(voter, captioned, batch)
    report["wall_s"] = time.perf_counter() - began
    return report


def run_bench(
    settings: Settings, plan: BenchPlan, external: bool, work_dir: Path, console: Console
) -> dict[str, Any]:
    work_dir.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    report: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "plan": plan.__dict__,
        "machine": machine(),
        "broker": "external" if external else "embedded (tansu, memory storage)",
        "models": {
            "captioner": settings.captioner.backend,
            "judges": settings.voter.judges,
            "predictor": settings.predictor.model,
        },
        "batch": settings.batch.model_dump(),
    }
    prefix = f"bench-{uuid.uuid4().hex[:6]}."
    with _broker(settings, external, work_dir) as settings:
        settings = settings.model_copy(update={"topic_prefix": prefix})
        wait_for_broker(settings, timeout=30)
        create_topics(settings)
        images = work_dir / "images"
        images.mkdir(parents=True, exist_ok=True)
        settings = settings.with_file_root(images)  # the workload's images are files
        warm = build_workload(images, 1, first_variant=900)
        main = build_workload(images, plan.per_task, first_variant=0)
        timed = time.perf_counter()
        console.print("[bold]loading models[/] (in-process stages)")
        stages = Stages.load(settings)
        report["model_load_s"] = time.perf_counter() - timed
        batch = settings.batch.max_batch

        console.print(f"[bold]in-process[/]: {len(main)} requests, batches of {batch}")
        run_chain(stages, warm.requests, batch)  # first calls of each model, not timed
        stages.forget_captions()
        inproc = run_chain(stages, main.requests, batch)
        report["in_process"] = {
            "requests": len(main),
            "seconds": inproc.seconds,
            "throughput_rps": len(main) / inproc.seconds,
            "busy_s": inproc.busy_s,
            "rejected": inproc.rejected,
        }

        console.print("[bold]voting[/]: the authors' way against batched scoring")
        captioned = inproc.outputs["captioner"][: plan.voting_records]
        report["voting"] = voting.compare_voting(stages.voter, captioned, batch)

        console.print(f"[bold]batching[/]: batch sizes {list(plan.batch_sizes)}")
        sweep_work = build_workload(images, -(-plan.batching_records // 7), first_variant=300)
        requests = sweep_work.requests[: plan.batching_records]
        captioned_sweep = batching.sweep(stages, "captioner", requests, plan.batch_sizes)
        stages.forget_captions()
        enriched = run_stage(
            stages.voter, run_stage(stages.captioner, requests, batch).outputs, batch
        ).outputs
        report["batching"] = {
            "captioner": captioned_sweep,
            "predictor": batching.sweep(stages, "predictor", enriched, plan.batch_sizes),
            "max_wait_ms": settings.batch.max_wait_ms,
        }

        console.print(f"[bold]kafka layer[/]: {plan.kafka_records} records per topic")
        samples = {
            "queries": parse_query(main.queries[0]),
            "requests": main.requests[0],
            "captioned": inproc.outputs["captioner"][0],
            "enriched": inproc.outputs["voter"][0],
            "predictions": inproc.outputs["predictor"][0],
        }
        kafka_settings = settings.model_copy(update={"topic_prefix": f"{prefix}kafka."})
        create_topics(kafka_settings)
        report["kafka_layer"] = kafka_layer.measure(kafka_settings, samples, plan.kafka_records)
        report["in_process"]["bench_process_peak_rss_mb"] = (
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
        del stages  # the pipeline's workers load their own
        _streaming_sections(settings, plan, external, prefix, work_dir, console, report)

        console.print("[bold]pipeline[/]: router and workers as processes")
        workers = WorkerProcesses(settings, PIPELINE_STAGES, work_dir / "logs").start()
        watcher = pipeline.PredictionWatcher(settings)
        try:
            workers.wait_ready(plan.timeout_s)
            warm_pipe = build_workload(images, 1, first_variant=901)
            pipeline.burst(settings, workers, watcher, warm_pipe, WORKER_STAGES, plan.timeout_s)
            console.print(f"  burst of {len(main)} requests")
            burst = pipeline.burst(settings, workers, watcher, main, WORKER_STAGES, plan.timeout_s)
            rate = plan.load_share * burst["throughput_rps"]
            latency_work = build_workload(images, -(-plan.latency_requests // 7), first_variant=100)
            latency_work.queries = latency_work.queries[: plan.latency_requests]
            console.print(f"  {len(latency_work)} requests at {rate:.2f}/s")
            burst["fixed_load"] = pipeline.fixed_load(
                settings, workers, watcher, latency_work, rate, WORKER_STAGES, plan.timeout_s
            )
            report["pipeline"] = burst
            report["memory_peak_rss_mb"] = workers.peak_rss_mb()
        finally:
            watcher.close()
            report["worker_exit_codes"] = workers.stop()

    ratio = report["pipeline"]["throughput_rps"] / report["in_process"]["throughput_rps"]
    report["ratios"] = {
        "pipeline_vs_in_process_throughput": ratio,
        "batched_voting_speedup": report["voting"].get("speedup"),
        "voting_decision_agreement": report["voting"].get("decision_agreement"),
        "captioner_best_batch_vs_1": max(
            r["speedup_vs_smallest"] for r in report["batching"]["captioner"]["rows"]
        ),
        "predictor_best_batch_vs_1": max(
            r["speedup_vs_smallest"] for r in report["batching"]["predictor"]["rows"]
        ),
    }
    report["goals"] = {
        "pipeline_throughput_share": {"goal": THROUGHPUT_GOAL, "met": ratio >= THROUGHPUT_GOAL},
        "voting": {
            "goal": "speedup >= 5 and agreement >= 0.95",
            "met": bool(
                report["voting"].get("speedup", 0) >= 5
                and report["voting"].get("decision_agreement", 0) >= 0.95
            ),
        },
    }
    report["gpu"] = (
        {"device": report["machine"]["gpu"]}
        if report["machine"]["gpu"]
        else {"skipped": "no GPU on this machine: the GPU section did not run"}
    )
    report["wall_s"] = time.perf_counter() - began
    return report

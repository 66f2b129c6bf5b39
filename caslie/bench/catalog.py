"""The router's state at catalog scale: ingest rate, resident memory after ingest, restart
from the checkpoint and a cold rebuild, for ``products`` products with 1 kB descriptions.

The router stage runs in this process on the common runner, with its follower and RocksDB
state in ``work_dir``; resident memory is this process's (the catalog producer is gone by
then; its baseline before the router started is reported next to it)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from caslie.bench.kafka_layer import running
from streams.clients import make_producer
from streams.config import BatchSettings, Settings
from streams.router.stages import RouterStage, RouterTables
from streams.router.tables import TableFollower
from streams.runner import StageRunner
from streams.topics import topic_name

#: Catalog batches: a router without a model takes large ones.
BATCH = {"max_batch": 1000, "max_wait_ms": 50, "max_in_flight": 20_000}


def rss_mb() -> float:
    """This process's resident memory now."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _product(i: int) -> bytes:
    return orjson.dumps(
        {
            "product_id": f"p{i}",
            "title": f"Product {i} steel travel mug",
            "brand": "Acme",
            "category": "Kitchen",
            "description": (f"Description {i}. " + "lorem ipsum dolor sit amet " * 40)[:1000],
            "images": [{"url": f"https://cdn.example/{i}/a.png"}, {"url": "s3://b/k.png"}],
        }
    )


def _produce(settings: Settings, products: int) -> float:
    producer = make_producer(settings, **{"linger.ms": 20, "batch.size": 1_000_000})
    topic = topic_name(settings, "catalog")
    began = time.perf_counter()
    for i in range(products):
        while True:
            try:
                producer.produce(topic, key=f"p{i}".encode(), value=_product(i))
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(120) != 0:
        raise TimeoutError("the catalog was not produced within 120 s")
    return time.perf_counter() - began


def _resolve_rate(
    settings: Settings, stage: RouterStage, products: int, queries: int, timeout: float
) -> float:
    """PSI queries per second resolved from the warm table into ``requests``: the queries
    are produced first, then a router replica reads them; timed from its first batch to its
    last (the group join is not part of it)."""
    producer = make_producer(settings, **{"linger.ms": 20})
    topic = topic_name(settings, "queries")
    for i in range(queries):
        query = {"request_id": f"q{i}", "task": "PSI", "product_id": f"p{i * 7919 % products}"}
        query["query"] = "steel travel mug"
        while True:
            try:
                producer.produce(topic, key=f"q{i}".encode(), value=orjson.dumps(query))
                break
            except BufferError:
                producer.poll(0.1)
    producer.flush(60)
    batches: list[tuple[float, int]] = []
    runner = StageRunner(
        stage, settings, on_batch=lambda n: batches.append((time.perf_counter(), n))
    )
    with running(runner, "bench-router-queries"):
        deadline = time.monotonic() + timeout
        while sum(n for _, n in batches) < queries:
            if time.monotonic() > deadline:
                raise TimeoutError(f"router: {sum(n for _, n in batches)} of {queries} resolved")
            time.sleep(0.01)
    (first, first_n), (last, _) = batches[0], batches[-1]
    return (queries - first_n) / (last - first)


def _wait(follower: TableFollower, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while follower.applied < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"router state: {follower.applied} of {count} after {timeout} s")
        time.sleep(0.05)


def _restore(settings: Settings, timeout: float) -> tuple[float, TableFollower]:
    began = time.perf_counter()
    follower = RouterTables.open(settings).follower(settings).start()
    if not follower.wait_restored(timeout):
        raise TimeoutError(f"router state not restored within {timeout} s")
    return time.perf_counter() - began, follower


def measure(settings: Settings, products: int, work_dir: Path, timeout: float) -> dict[str, Any]:
    state = work_dir / "router-state"
    shutil.rmtree(state, ignore_errors=True)
    settings = settings.model_copy(
        update={
            "router": settings.router.model_copy(update={"state_dir": state}),
            "stage_batch": {**settings.stage_batch, "router": BatchSettings(**BATCH)},
        }
    )
    produce_s = _produce(settings, products)
    baseline = rss_mb()

    tables = RouterTables.open(settings)
    follower = tables.follower(settings).start()
    stage = RouterStage(tables, follower, settings.router)
    runner = StageRunner(stage, settings)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), name="bench-router")
    began = time.perf_counter()
    thread.start()
    try:
        _wait(follower, products, timeout)
        ingest_s = time.perf_counter() - began
        after_ingest = rss_mb()
        stop.set()
        thread.join(60)
        resolve_per_s = _resolve_rate(settings, stage, products, min(products, 20_000), timeout)
    finally:
        stop.set()
        thread.join(60)
        follower.close()

    restart_s, again = _restore(settings, timeout)
    restart_read = again.applied
    again.close()
    shutil.rmtree(state)
    cold_s, cold = _restore(settings, timeout)
    cold_read = cold.applied
    cold.close()
    disk = sum(f.stat().st_size for f in state.rglob("*") if f.is_file())
    return {
        "products": products,
        "description_bytes": 1000,
        "batch": BATCH,
        "produce_s": produce_s,
        "ingest_s": ingest_s,
        "ingest_products_per_s": products / ingest_s,
        "queries_resolved_per_s": resolve_per_s,
        "rss_before_router_mb": baseline,
        "rss_after_ingest_mb": after_ingest,
        "restart_to_ready_s": restart_s,
        "restart_records_read": restart_read,
        "cold_rebuild_s": cold_s,
        "cold_rebuild_records_read": cold_read,
        "state_disk_mb": disk / 2**20,
        "goals": {
            "ingest_products_per_s": {"goal": 10_000, "met": products / ingest_s >= 10_000},
            "rss_after_ingest_mb": {"goal": 500, "met": after_ingest <= 500},
            "queries_resolved_per_s": {"goal": 10_000, "met": resolve_per_s >= 10_000},
            "restart_to_ready_s": {"goal": 30, "met": restart_s <= 30},
        },
    }


def markdown(section: dict[str, Any]) -> list[str]:
    c = section
    return [
        "## Router state at catalog scale",
        "",
        f"{c['products']} products with {c['description_bytes']}-byte descriptions, router "
        f"batches of up to {c['batch']['max_batch']}.",
        "",
        "| ingest products/s | PSI queries resolved/s | RSS after ingest MB (before router) "
        "| restart to ready s (records read) | cold rebuild s (records read) "
        "| state on disk MB |",
        "|---|---|---|---|---|---|",
        f"| {c['ingest_products_per_s']:.0f} | {c['queries_resolved_per_s']:.0f} "
        f"| {c['rss_after_ingest_mb']:.0f} "
        f"({c['rss_before_router_mb']:.0f}) | {c['restart_to_ready_s']:.2f} "
        f"({c['restart_records_read']}) | {c['cold_rebuild_s']:.2f} "
        f"({c['cold_rebuild_records_read']}) | {c['state_disk_mb']:.0f} |",
        "",
        "Goals: "
        + ", ".join(
            f"{name} {'met' if g['met'] else 'missed'} (goal {g['goal']})"
            for name, g in c["goals"].items()
        )
        + ".",
        "",
    ]

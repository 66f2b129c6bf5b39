"""The full Kafka pipeline: events produced to the broker, router and worker processes, and
predictions read back, timed from the first event produced to the last prediction read."""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import orjson

from caslie.bench.workers import WorkerProcesses
from caslie.bench.workload import Workload
from streams.clients import make_producer
from streams.config import Settings
from streams.consume import consume_records
from streams.produce import produce_event
from streams.topics import topic_name

BUSY = "caslie_batch_seconds_sum"
BATCH_SUM, BATCH_COUNT = "caslie_batch_size_sum", "caslie_batch_size_count"


class PredictionWatcher:
    """Reads ``predictions`` from the start and notes when each request id was first seen."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._read, name="bench-watch", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for raw in consume_records(
            self.settings, "predictions", from_beginning=True, stop=self.stop
        ):
            at = time.perf_counter()
            request_id = orjson.loads(raw).get("request_id")
            if isinstance(request_id, str):
                self.seen.setdefault(request_id, at)

    def wait_for(self, ids: set[str], timeout: float, workers: WorkerProcesses) -> None:
        deadline = time.monotonic() + timeout
        while not ids <= self.seen.keys():
            if time.monotonic() > deadline:
                missing = len(ids - self.seen.keys())
                raise TimeoutError(f"{missing} of {len(ids)} predictions missing after {timeout}s")
            workers.check_alive()
            time.sleep(0.05)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


def produce(settings: Settings, work: Workload, rate: float | None = None) -> dict[str, float]:
    """Products and reviews first, then the queries (spaced ``1/rate`` s apart if ``rate``);
    returns when each query was handed to the producer."""
    producer = make_producer(settings)
    for logical, events in (("catalog", work.products), ("reviews", work.reviews)):
        for event in events:
            produce_event(producer, settings, logical, event)
    producer.flush(30)
    sent: dict[str, float] = {}
    began = time.perf_counter()
    for i, query in enumerate(work.queries):
        if rate:
            time.sleep(max(0.0, began + i / rate - time.perf_counter()))
        sent[query["request_id"]] = time.perf_counter()
        producer.produce(
            topic_name(settings, "queries"),
            key=query["request_id"].encode(),
            value=orjson.dumps(query),
        )
        producer.poll(0)
        if rate:
            producer.flush(10)  # paced: each query leaves now, not with the next batch
    if producer.flush(30):
        raise RuntimeError("queries not delivered to the broker")
    return sent


def readings(workers: WorkerProcesses, stages: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Busy time and batch-size totals of each stage, one scrape per stage."""
    return {stage: workers.metrics(stage, (BUSY, BATCH_SUM, BATCH_COUNT)) for stage in stages}


def _delta(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], name: str
) -> dict[str, float]:
    return {stage: after[stage][name] - before[stage][name] for stage in before}


def burst(
    settings: Settings,
    workers: WorkerProcesses,
    watcher: PredictionWatcher,
    work: Workload,
    stages: tuple[str, ...],
    timeout: float,
) -> dict[str, Any]:
    """Every query at once; throughput from the first event produced to the last prediction."""
    before = readings(workers, stages)
    began = time.perf_counter()
    produce(settings, work)
    ids = {q["request_id"] for q in work.queries}
    watcher.wait_for(ids, timeout, workers)
    seconds = max(watcher.seen[i] for i in ids) - began
    after = readings(workers, stages)
    return {
        "requests": len(ids),
        "seconds": seconds,
        "throughput_rps": len(ids) / seconds,
        "busy_s": _delta(before, after, BUSY),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def fixed_load(
    settings: Settings,
    workers: WorkerProcesses,
    watcher: PredictionWatcher,
    work: Workload,
    rate: float,
    stages: tuple[str, ...],
    timeout: float,
) -> dict[str, Any]:
    """Queries offered at ``rate`` per second; end-to-end latency of each."""
    before = readings(workers, stages)
    sent = produce(settings, work, rate=rate)
    watcher.wait_for(set(sent), timeout, workers)
    latencies = [watcher.seen[i] - t for i, t in sent.items()]
    after = readings(workers, stages)
    sizes, counts = _delta(before, after, BATCH_SUM), _delta(before, after, BATCH_COUNT)
    mean_batch = {s: sizes[s] / counts[s] if counts[s] else 0.0 for s in stages}
    return {
        "requests": len(sent),
        "offered_rps": rate,
        "latency_s": {
            "p50": percentile(latencies, 0.50),
            "p95": percentile(latencies, 0.95),
            "p99": percentile(latencies, 0.99),
            "mean": statistics.fmean(latencies),
            "max": max(latencies),
        },
        "mean_batch_size": mean_batch,
    }

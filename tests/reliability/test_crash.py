"""Kill workers with SIGKILL at random points and pause the broker: nothing is lost, and
nothing is duplicated in exactly-once mode (at-least-once: repeats carry identical content).

The whole pipeline runs as real ``caslie run`` processes on Apache Kafka: router (catalog
table, query resolution) -> captioner (Tesseract OCR on real image files) -> voter (lexical
judge) -> predictor (SmolLM2-135M scoring the options), fed with products and queries; every
query must end as a prediction. Counts are printed (``-s``) for the closing note.
"""

from __future__ import annotations

import collections
import math
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from PIL import Image, ImageDraw

from streams.apache_kafka import ApacheKafka
from streams.clients import make_producer
from streams.config import Settings
from streams.consume import consume_records
from streams.produce import produce_event
from tests.reliability.workers import WorkerPool, environment

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

EVENTS = 300
STAGES = ["router", "captioner", "voter", "predictor"]
DEADLINE_S = 480
#: When each stage ran: differs between re-processings.
VOLATILE = {"timestamps", "trace", "latencies"}


class Collector:
    """Reads ``topic`` (read_committed) until every request id was seen."""

    def __init__(self, settings: Settings, expected: set[str], topic: str = "predictions") -> None:
        self.settings = settings
        self.expected = expected
        self.topic = topic
        self.records: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for value in consume_records(
            self.settings, self.topic, from_beginning=True, stop=self.stop
        ):
            record = orjson.loads(value)
            self.records[record["request_id"]].append(record)

    def complete(self) -> bool:
        return self.expected <= self.records.keys()

    def finish(self, quiet_s: float = 8.0) -> None:
        time.sleep(quiet_s)  # late duplicates, if any, arrive now
        self.stop.set()
        self.thread.join(30)


def _images(folder: Path) -> list[str]:
    """A few product photos with printed text, so the OCR captioner does real work."""
    urls = []
    for i, word in enumerate(["ACME MUG", "BLUE KETTLE", "STEEL PAN"]):
        image = Image.new("RGB", (320, 160), (250, 250, 245))
        draw = ImageDraw.Draw(image)
        draw.rectangle((20, 20, 300, 140), outline=(30, 30, 120), width=4)
        draw.text((40, 65), f"{word} {i}", fill=(0, 0, 0), font_size=28)
        path = folder / f"product-{i}.png"
        image.save(path)
        urls.append(path.as_uri())
    return urls


def _produce(
    settings: Settings, products: list[dict[str, Any]], queries: list[dict[str, Any]]
) -> set[str]:
    """Products first, then the queries; returns the queries' request ids."""
    producer = make_producer(settings)
    for logical, events in (("catalog", products), ("queries", queries)):
        for event in events:
            produce_event(producer, settings, logical, event)
        assert producer.flush(30) == 0
    return {q["request_id"] for q in queries}


def _send(settings: Settings, folder: Path) -> set[str]:
    """Products with photos, then PSI queries about them (each with its own query text)."""
    urls = _images(folder)
    products = [
        {"product_id": f"p{i}", "title": f"Steel mug {i}", "images": [{"url": url}]}
        for i, url in enumerate(urls)
    ]
    queries = [
        {
            "request_id": f"req-{i:04d}",
            "task": "PSI",
            "product_id": f"p{i % len(urls)}",
            "query": f"steel mug for order {i}",
        }
        for i in range(EVENTS)
    ]
    return _produce(settings, products, queries)


def _report(name: str, pool: WorkerPool, collector: Collector, **extra: Any) -> dict[str, Any]:
    copies = [len(collector.records.get(rid, [])) for rid in collector.expected]
    report = {
        "test": name,
        "events": EVENTS,
        "kills": pool.kills,
        "starts": pool.starts,
        "received": sum(copies),
        "duplicates": sum(c - 1 for c in copies if c > 1),
        "lost": sum(1 for c in copies if c == 0),
        **extra,
    }
    print(orjson.dumps(report).decode())
    return report


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two copies of a prediction agree on everything but when stages ran. Option
    scores may differ in their last digits: a repeat is scored in another batch, padded to
    another length."""
    stable_a, stable_b = ({k: v for k, v in r.items() if k not in VOLATILE} for r in (a, b))
    scores_a, scores_b = stable_a.pop("scores", {}), stable_b.pop("scores", {})
    return (
        stable_a == stable_b
        and scores_a.keys() == scores_b.keys()
        and all(math.isclose(scores_a[k], scores_b[k], abs_tol=1e-3) for k in scores_a)
    )


@pytest.mark.parametrize("delivery", ["exactly_once", "at_least_once"])
def test_sigkill_at_random_points_loses_nothing(
    delivery: str, kafka_settings: Settings, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    rng = random.Random(f"crash-{delivery}")
    pool = WorkerPool(environment(kafka_env, delivery, image_folder=tmp_path), STAGES, tmp_path)
    expected = _send(kafka_settings, tmp_path)
    collector = Collector(kafka_settings, expected)
    pool.start_all()
    deadline = time.monotonic() + DEADLINE_S
    try:
        while not collector.complete() and time.monotonic() < deadline:
            time.sleep(rng.uniform(1.0, 4.0))
            assert not pool.exited(), f"a worker exited by itself: {pool.exited()}\n{pool.logs()}"
            if pool.kills < 8 and not collector.complete():
                pool.kill_one(rng)
        collector.finish()
    finally:
        codes = pool.stop_all()
    report = _report(f"sigkill-{delivery}", pool, collector, exit_codes=codes)
    assert report["lost"] == 0, pool.logs()
    assert pool.kills >= 4, "the pipeline finished before enough kills; send more events"
    assert codes == dict.fromkeys(STAGES, 0), "SIGTERM stops a worker cleanly with exit 0"
    if delivery == "exactly_once":
        assert report["duplicates"] == 0
    else:
        for rid, copies in collector.records.items():
            assert all(_same(c, copies[0]) for c in copies), (rid, copies)


@pytest.mark.parametrize("delivery", ["exactly_once", "at_least_once"])
def test_broker_pause_workers_wait_and_resume(
    delivery: str,
    apache_kafka: ApacheKafka | None,
    kafka_settings: Settings,
    kafka_env: dict[str, str],
    tmp_path: Path,
) -> None:
    if apache_kafka is None or apache_kafka.proc is None:
        pytest.skip("pausing needs the broker process this session started")
    broker = apache_kafka.proc
    env = environment(kafka_env, delivery, image_folder=tmp_path)
    pool = WorkerPool(env, STAGES, tmp_path)
    pool.start_all()
    time.sleep(8)  # workers up and assigned
    expected = _send(kafka_settings, tmp_path)
    collector = Collector(kafka_settings, expected)
    try:
        time.sleep(1.0)
        broker.send_signal(signal.SIGSTOP)
        time.sleep(12)  # longer than the session timeout
        assert not pool.exited(), "workers must wait for the broker, not die"
        broker.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + DEADLINE_S
        while not collector.complete() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not pool.exited(), pool.logs()
        collector.finish(quiet_s=2)
    finally:
        broker.send_signal(signal.SIGCONT)
        codes = pool.stop_all()
    report = _report(f"broker-pause-{delivery}", pool, collector, paused_s=12, exit_codes=codes)
    assert report["lost"] == 0, pool.logs()
    assert codes == dict.fromkeys(STAGES, 0)
    if delivery == "exactly_once":
        assert report["duplicates"] == 0, pool.logs()
    else:
        for rid, copies in collector.records.items():
            assert all(_same(c, copies[0]) for c in copies), (rid, copies)


ROUTER_QUERIES = 1500


def _send_queries(settings: Settings) -> set[str]:
    products = [{"product_id": f"p{i}", "title": f"Steel mug {i}"} for i in range(5)]
    queries = [
        {"request_id": f"q-{i:04d}", "task": "PSI", "product_id": f"p{i % 5}", "query": "mug"}
        for i in range(ROUTER_QUERIES)
    ]
    return _produce(settings, products, queries)


def test_router_sigkill_while_it_works_exactly_once(
    kafka_settings: Settings, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    """The router alone, killed four times while it resolves 1,500 queries (each restart
    rebuilds its tables from the changelogs): exactly one request per query."""
    rng = random.Random("crash-router")
    pool = WorkerPool(environment(kafka_env, "exactly_once"), ["router"], tmp_path)
    expected = _send_queries(kafka_settings)
    collector = Collector(kafka_settings, expected, topic="requests")
    pool.start_all()
    deadline = time.monotonic() + DEADLINE_S
    seen_at_start = 0
    try:
        while not collector.complete() and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.3, 1.0))
            assert not pool.exited(), f"the router exited by itself: {pool.exited()}"
            seen = sum(len(c) for c in collector.records.values())
            # kill while it works: once this process has committed requests of its own
            if pool.kills < 4 and not collector.complete() and seen > seen_at_start:
                pool.kill_one(rng)
                seen_at_start = sum(len(c) for c in collector.records.values())
        collector.finish(quiet_s=3)
    finally:
        codes = pool.stop_all()
    report = _report("sigkill-router", pool, collector, events=ROUTER_QUERIES, exit_codes=codes)
    assert report["lost"] == 0, pool.logs()
    assert pool.kills >= 2, "the router finished before enough kills; send more queries"
    assert report["duplicates"] == 0
    assert codes == {"router": 0}, "SIGTERM stops the router cleanly with exit 0"

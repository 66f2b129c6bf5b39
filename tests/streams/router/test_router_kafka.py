"""The router as a real process against a real Apache Kafka broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from streams.broker import free_port
from streams.clients import make_consumer, make_producer
from streams.config import Settings
from streams.consume import consume_records
from streams.topics import topic_name
from tests.support.hostile import CORPUS, raw_value

pytestmark = pytest.mark.kafka

PRODUCTS = [
    {
        "product_id": "p1",
        "title": "Acme kettle",
        "brand": "Acme",
        "images": [{"url": "file:///i/p1.png"}],
    },
    {"product_id": "p2", "title": "Tea cups", "images": [{"url": "https://cdn.example/p2.png"}]},
    {"product_id": "p3", "title": "Mug"},
]
REVIEWS = [
    {
        "review_id": "rv1",
        "product_id": "p1",
        "text": "Boils fast.",
        "images": [{"url": "file:///i/rv1.png"}],
    }
]
QUERIES = [
    {"request_id": "ap", "task": "AP", "product_id": "p1", "question": "Is it steel?"},
    {"request_id": "cc", "task": "CC", "product_id": "p1", "options": ["Kettles", "Pots"]},
    {"request_id": "prp", "task": "PRP", "product_id": "p1", "other_product_id": "p2"},
    {"request_id": "psi", "task": "PSI", "product_id": "p2", "query": "coffee mug"},
    {"request_id": "mpc", "task": "MPC", "product_id": "p3", "query": "mug"},
    {"request_id": "sa", "task": "SA", "review_id": "rv1", "product_id": "p1"},
    {
        "request_id": "sr",
        "task": "SR",
        "history_product_ids": ["p1"],
        "candidate_product_ids": ["p2", "p3"],
    },
    # arrives before its product: waits, then resolves
    {"request_id": "late", "task": "PSI", "product_id": "p-late", "query": "late"},
]
BAD = [
    (b"{this is not json", "invalid_json"),
    (orjson.dumps({"request_id": "bad-shape", "task": "PSI", "product_id": "p1"}), "schema"),
    (orjson.dumps({"request_id": "bad-task", "task": "XX", "product_id": "p1"}), "unknown_task"),
    (
        orjson.dumps({"request_id": "ghost", "task": "MPC", "product_id": "nope", "query": "q"}),
        "unknown_product",
    ),
]


def router_alive(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is None


def _changelog(settings: Settings, logical: str, count: int) -> list[tuple[bytes, bytes | None]]:
    """The first ``count`` (key, value) records of a topic, nulls included."""
    consumer = make_consumer(settings, None)
    consumer.assign(
        [
            TopicPartition(topic_name(settings, logical), p, OFFSET_BEGINNING)
            for p in range(settings.partitions)
        ]
    )
    found: list[tuple[bytes, bytes | None]] = []
    deadline = time.monotonic() + 30
    try:
        while len(found) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                found.append((msg.key() or b"", msg.value()))
    finally:
        consumer.close()
    return found


def _send(
    settings: Settings, logical: str, records: Sequence[tuple[str | None, bytes | None]]
) -> None:
    producer = make_producer(settings)
    for key, value in records:
        producer.produce(
            topic_name(settings, logical), key=key.encode() if key else None, value=value
        )
    assert producer.flush(30) == 0


@pytest.fixture
def router_port() -> int:
    return free_port()


def _start_router(
    kafka_env: dict[str, str], log_path: Path, port: int, **settings: str
) -> subprocess.Popen[bytes]:
    env = {
        **kafka_env,
        "CASLIE_METRICS_PORT": str(port),
        # one replica's state folder, shared by the routers of one test (restart = resume)
        "CASLIE_ROUTER__STATE_DIR": str(log_path.parent / "router-state"),
        **{f"CASLIE_ROUTER__{k.upper()}": v for k, v in settings.items()},
    }
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "caslie", "run", "router"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=log_path.parent,
        )


def _stop_router(proc: subprocess.Popen[bytes], log_path: Path) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("router did not stop within 30 s of SIGTERM")
    if os.environ.get("CASLIE_TEST_SHOW_LOGS"):
        print(log_path.read_text())
    return code


@pytest.fixture
def router(
    kafka_env: dict[str, str], tmp_path: Path, router_port: int
) -> Iterator[subprocess.Popen[bytes]]:
    log_path = tmp_path / "router.log"
    # every new review also becomes an SA request
    proc = _start_router(
        kafka_env, log_path, router_port, product_wait_s="6", retry_interval_s="0.5", auto_sa="1"
    )
    yield proc
    assert _stop_router(proc, log_path) == 0, log_path.read_text()[-3000:]


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:  # not listening yet
        return 0, str(exc)


def _wait_ready(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    status, body = 0, ""
    while time.monotonic() < deadline:
        status, body = _get(port, "/readyz")
        if status == 200:
            return
        time.sleep(0.3)
    pytest.fail(f"router not ready within {timeout} s: {status} {body}")


def test_router_resolves_all_tasks_and_dead_letters_bad_input(
    kafka_settings: Settings, router: subprocess.Popen[bytes], router_port: int
) -> None:
    _wait_ready(router_port)
    assert _get(router_port, "/healthz")[0] == 200
    _send(kafka_settings, "catalog", [(p["product_id"], orjson.dumps(p)) for p in PRODUCTS])
    _send(kafka_settings, "reviews", [(r["product_id"], orjson.dumps(r)) for r in REVIEWS])
    time.sleep(1)
    mixed = [(q["request_id"], orjson.dumps(q)) for q in QUERIES[:4]]
    mixed += [(None, raw) for raw, _ in BAD]
    mixed += [(q["request_id"], orjson.dumps(q)) for q in QUERIES[4:]]
    _send(kafka_settings, "queries", mixed)
    time.sleep(2)
    _send(
        kafka_settings,
        "catalog",
        [("p-late", orjson.dumps({"product_id": "p-late", "title": "Late"}))],
    )

    requests = [
        orjson.loads(v)
        for v in consume_records(
            kafka_settings,
            "requests",
            max_records=len(QUERIES) + len(REVIEWS),
            idle_timeout=60,
            from_beginning=True,
        )
    ]
    assert router.poll() is None, "router died"
    by_id = {r["request_id"]: r for r in requests}
    expected = [q["request_id"] for q in QUERIES] + [f"auto-sa:{r['review_id']}" for r in REVIEWS]
    assert sorted(by_id) == sorted(expected)
    assert len(requests) == len(expected)
    assert by_id["auto-sa:rv1"]["inputs"] == {"review": "Boils fast."}
    assert by_id["ap"]["inputs"]["document"] == "Boils fast."
    assert by_id["sa"]["slots"][0]["image"]["url"] == "file:///i/rv1.png"
    assert [s["slot"] for s in by_id["prp"]["slots"]] == ["product1", "product2"]
    assert by_id["sr"]["options"] == ["A: Tea cups", "B: Mug"]
    assert by_id["late"]["inputs"]["title"] == "Late"

    dlq = [
        orjson.loads(v)
        for v in consume_records(
            kafka_settings, "dlq", max_records=len(BAD), idle_timeout=30, from_beginning=True
        )
    ]
    assert sorted(e["error_kind"] for e in dlq) == sorted(kind for _, kind in BAD)
    for envelope in dlq:
        assert envelope["message"]
    ghost = next(e for e in dlq if e["error_kind"] == "unknown_product")
    # it gave up in the stage that re-checks waiting queries; the rest failed at first sight
    assert ghost["stage"] == "router.waiting"
    assert all(e["stage"] == "router" for e in dlq if e is not ghost)
    assert "product(s) nope never arrived within" in ghost["message"]
    shape = next(e for e in dlq if e["error_kind"] == "schema")
    assert "query" in shape["message"]

    status, text = _get(router_port, "/metrics")
    assert status == 200
    queries_in = (
        f'caslie_records_in_total{{stage="router",topic="{kafka_settings.topic_prefix}queries"}}'
    )
    assert f"{queries_in} {float(len(QUERIES) + len(BAD))}" in text
    assert 'caslie_dlq_records_total{kind="invalid_json",stage="router"} 1.0' in text


def test_hostile_corpus_through_the_router(
    kafka_settings: Settings, router: subprocess.Popen[bytes]
) -> None:
    """Every case of tests/data/hostile/records.json that Kafka itself accepts (records under
    the broker's 1 MB limit) reaches the DLQ with its kind and reason; valid events around
    them still resolve."""
    cases = [c for c in CORPUS if len(raw_value(c)) < 1_000_000]
    assert len(cases) >= 20
    _send(kafka_settings, "catalog", [(p["product_id"], orjson.dumps(p)) for p in PRODUCTS])
    for i, case in enumerate(cases):  # keys: the catalog is compacted
        _send(kafka_settings, case["topic"], [(f"hostile-{i}", raw_value(case))])
    good = [q for q in QUERIES if q["request_id"] in ("psi", "mpc")]
    _send(kafka_settings, "queries", [(q["request_id"], orjson.dumps(q)) for q in good])

    dlq = [
        orjson.loads(v)
        for v in consume_records(
            kafka_settings, "dlq", max_records=len(cases), idle_timeout=30, from_beginning=True
        )
    ]
    assert router.poll() is None, "router died"
    for case in cases:
        assert any(
            e["error_kind"] == case["kind"]
            and case["reason"] in e["message"]
            and e["topic"].endswith("." + case["topic"])
            for e in dlq
        ), f"no DLQ envelope for {case['name']}"
    requests = consume_records(
        kafka_settings, "requests", max_records=len(good), idle_timeout=30, from_beginning=True
    )
    assert sorted(orjson.loads(v)["request_id"] for v in requests) == ["mpc", "psi"]


def test_a_restarted_router_restores_its_tables(
    kafka_settings: Settings, kafka_env: dict[str, str], tmp_path: Path, router_port: int
) -> None:
    """Products and reviews seen by one router process are known to the next one: it rebuilds
    its tables from their changelog topics before it takes a query (here no query may wait,
    so anything unresolved would go straight to the DLQ)."""
    first_log = tmp_path / "router-1.log"
    first = _start_router(kafka_env, first_log, router_port)
    _wait_ready(router_port)
    _send(kafka_settings, "catalog", [(p["product_id"], orjson.dumps(p)) for p in PRODUCTS])
    _send(kafka_settings, "reviews", [(r["product_id"], orjson.dumps(r)) for r in REVIEWS])
    logged = list(
        consume_records(
            kafka_settings,
            "router.products",
            max_records=len(PRODUCTS),
            idle_timeout=30,
            from_beginning=True,
        )
    )
    assert len(logged) == len(PRODUCTS)
    assert _stop_router(first, first_log) == 0, first_log.read_text()[-3000:]

    second_log = tmp_path / "router-2.log"
    second = _start_router(kafka_env, second_log, router_port, product_wait_s="0")
    try:
        _wait_ready(router_port)
        wanted = [q for q in QUERIES if q["request_id"] in ("ap", "sa", "sr")]
        _send(kafka_settings, "queries", [(q["request_id"], orjson.dumps(q)) for q in wanted])
        requests = consume_records(
            kafka_settings,
            "requests",
            max_records=len(wanted),
            idle_timeout=30,
            from_beginning=True,
        )
        by_id = {r["request_id"]: r for r in map(orjson.loads, requests)}
        assert sorted(by_id) == ["ap", "sa", "sr"], second_log.read_text()[-3000:]
        assert by_id["ap"]["inputs"]["document"] == "Boils fast."
        dlq = consume_records(kafka_settings, "dlq", idle_timeout=3, from_beginning=True)
        assert list(dlq) == []
    finally:
        assert _stop_router(second, second_log) == 0, second_log.read_text()[-3000:]


def test_a_null_value_on_the_catalog_deletes_the_product(
    kafka_settings: Settings, kafka_env: dict[str, str], tmp_path: Path, router_port: int
) -> None:
    """A Kafka tombstone on ``catalog`` is a delete, not a DLQ record: a query for the product
    afterwards fails as unknown, and the router's changelog gets a tombstone of its own."""
    log_path = tmp_path / "router.log"
    proc = _start_router(kafka_env, log_path, router_port, product_wait_s="0")
    try:
        _wait_ready(router_port)
        _send(kafka_settings, "catalog", [("p1", orjson.dumps(PRODUCTS[0]))])
        _send(kafka_settings, "catalog", [("p1", None)])
        query = {"request_id": "after", "task": "PSI", "product_id": "p1", "query": "kettle"}
        time.sleep(1)
        _send(kafka_settings, "queries", [("after", orjson.dumps(query))])
        [envelope] = [
            orjson.loads(v)
            for v in consume_records(
                kafka_settings, "dlq", max_records=2, idle_timeout=15, from_beginning=True
            )
        ]
        assert envelope["error_kind"] == "unknown_product", envelope
        assert envelope["topic"].endswith(".queries")
        assert router_alive(proc), log_path.read_text()[-3000:]
    finally:
        assert _stop_router(proc, log_path) == 0, log_path.read_text()[-3000:]


def test_the_router_writes_a_null_value_to_its_changelog_for_a_delete(
    kafka_settings: Settings, kafka_env: dict[str, str], tmp_path: Path, router_port: int
) -> None:
    log_path = tmp_path / "router.log"
    proc = _start_router(kafka_env, log_path, router_port)
    try:
        _wait_ready(router_port)
        _send(kafka_settings, "catalog", [("p1", orjson.dumps(PRODUCTS[0])), ("p1", None)])
        changelog = _changelog(kafka_settings, "router.products", 2)
        assert [key for key, _ in changelog] == [b"p1", b"p1"]
        assert changelog[1][1] is None
    finally:
        assert _stop_router(proc, log_path) == 0, log_path.read_text()[-3000:]


def test_a_router_fed_only_garbage_exits_3_at_the_dlq_limit(
    kafka_settings: Settings, kafka_env: dict[str, str], tmp_path: Path, router_port: int
) -> None:
    """It stops with a clear error instead of draining the topic into the DLQ."""
    log_path = tmp_path / "router.log"
    env = {**kafka_env, "CASLIE_DLQ__MAX_CONSECUTIVE": "10"}
    proc = _start_router(env, log_path, router_port)
    _send(kafka_settings, "queries", [(f"g{i}", b"garbage %d" % i) for i in range(100)])
    try:
        code = proc.wait(90)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the router kept consuming garbage")
    log = log_path.read_text()
    assert code == 3, log[-3000:]
    assert "10 invalid records in a row" in log
    dlq = list(consume_records(kafka_settings, "dlq", idle_timeout=3, from_beginning=True))
    assert 1 <= len(dlq) < 10


def test_a_listing_produced_before_its_category_schema_resolves_once_it_arrives(
    kafka_settings: Settings, router: subprocess.Popen[bytes], router_port: int
) -> None:
    """``caslie produce listings`` and ``aspect_schemas``: the router keeps both, and the LG
    query of the new listing waits for its category's schema, then resolves against it."""
    from streams.produce import produce_lines

    _wait_ready(router_port)
    listing = {
        "listing_id": "l1",
        "category": "womens-shoes",
        "images": [{"url": "https://cdn.example/l1.jpg"}],
        "seller_text": "Worn twice.",
    }
    schema = {
        "category": "womens-shoes",
        "aspects": [{"name": "Brand", "required": True}, {"name": "Colour", "values": ["Black"]}],
    }
    assert produce_lines(kafka_settings, "listings", [orjson.dumps(listing)]).sent == 1
    time.sleep(1.5)  # the listing's LG query waits at least one retry
    assert produce_lines(kafka_settings, "aspect_schemas", [orjson.dumps(schema)]).sent == 1
    [request] = consume_records(
        kafka_settings, "requests", max_records=1, idle_timeout=30, from_beginning=True
    )
    got = orjson.loads(request)
    assert (got["request_id"], got["task"], got["options"]) == (
        "auto-lg:l1",
        "LG",
        ["Brand", "Colour"],
    )
    assert got["inputs"]["seller_text"] == "Worn twice."
    assert [k for k, _ in _changelog(kafka_settings, "router.aspect_schemas", 1)] == [
        b"womens-shoes"
    ]
    assert router_alive(router)

"""An outside client, Debian's kcat, drives the pipeline on ``caslie broker``: it produces a
product and a query, the router turns them into a task request, kcat reads it back with its
JSON envelope, and ``caslie consume --json-envelope`` prints the same envelope."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.kafka

KCAT = shutil.which("kcat") or shutil.which("kafkacat")

PRODUCT = {
    "product_id": "kettle",
    "title": "Acme 1.7L electric kettle",
    "brand": "Acme",
    "images": [{"url": "https://cdn.example/kettle.png"}],
}


@pytest.fixture
def broker() -> Iterator[str]:
    """``caslie broker --broker apache`` as a subprocess; yields its address."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "caslie", "broker", "--broker", "apache"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        address = proc.stdout.readline().decode().strip()
        said = proc.stderr.readline().decode()
        assert address.startswith("127.0.0.1:"), proc.stderr.read().decode()[-2000:]
        assert said.startswith(f"Apache Kafka broker on {address}"), said
        yield address
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0


def kcat(address: str, *args: str, stdin: bytes | None = None) -> bytes:
    assert KCAT is not None
    done = subprocess.run(
        [KCAT, "-b", address, "-X", "isolation.level=read_committed", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return done.stdout


@pytest.mark.skipif(KCAT is None, reason="kcat is not installed (apt-get install kcat)")
def test_kcat_produces_and_reads_the_routers_task_request(broker: str, tmp_path: Path) -> None:
    prefix = f"kc{uuid.uuid4().hex[:8]}."
    env = {
        **os.environ,
        "CASLIE_BOOTSTRAP_SERVERS": broker,
        "CASLIE_TOPIC_PREFIX": prefix,
        "CASLIE_CACHE_DIR": str(tmp_path),
    }
    cli = [sys.executable, "-m", "caslie"]
    created = subprocess.run([*cli, "topics", "create"], env=env, capture_output=True)
    assert created.returncode == 0, created.stderr.decode()[-2000:]
    rid = f"kcat-{uuid.uuid4().hex[:8]}"
    query = {
        "request_id": rid,
        "task": "AP",
        "product_id": "kettle",
        "question": "Steel body?",
        "document": "The kettle's body is brushed stainless steel.",  # AP needs one, or reviews
    }
    kcat(broker, "-P", "-t", f"{prefix}catalog", "-K", "\t", stdin=_keyed("kettle", PRODUCT))
    kcat(broker, "-P", "-t", f"{prefix}queries", "-K", "\t", stdin=_keyed(rid, query))
    router = subprocess.Popen(
        [*cli, "run", "router"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        out = kcat(broker, "-C", "-t", f"{prefix}requests", "-o", "beginning", "-c", "1", "-J")
    finally:
        router.send_signal(signal.SIGTERM)
        router.wait(60)
    seen = orjson.loads(out)
    assert (seen["topic"], seen["key"]) == (f"{prefix}requests", rid)
    request = orjson.loads(seen["payload"])
    assert (request["request_id"], request["task"]) == (rid, "AP")
    assert request["inputs"]["question"] == "Steel body?"
    assert "https://cdn.example/kettle.png" in str(request["slots"])  # the product joined
    read = ["--json-envelope", "--from-beginning", "--max", "1", "--timeout", "30"]
    ours = subprocess.run(
        [*cli, "consume", "requests", *read],
        env=env,
        capture_output=True,
    )
    assert ours.returncode == 0, ours.stderr.decode()[-2000:]
    envelope = orjson.loads(ours.stdout)
    for field in ("topic", "partition", "offset", "tstype", "ts", "key"):
        assert envelope[field] == seen[field], field
    assert envelope["headers"] == seen.get("headers", [])  # kcat leaves out an empty list
    assert envelope["payload"] == request


def _keyed(key: str, value: dict[str, object]) -> bytes:
    return key.encode() + b"\t" + orjson.dumps(value) + b"\n"


@pytest.mark.skipif(KCAT is None, reason="kcat is not installed (apt-get install kcat)")
def test_the_event_docs_example_lines_through_the_router_with_kcat(
    broker: str, tmp_path: Path
) -> None:
    """docs/events.md's catalog, review and CASLIE query lines, produced by kcat keyed as the
    page says, each end as the router's task request on ``requests`` or as a failure with
    its reason on ``predictions``: none is lost or left waiting."""
    from streams.topics import BY_LOGICAL
    from tests.schemas.test_events_doc import EXAMPLES

    prefix = f"kd{uuid.uuid4().hex[:8]}."
    env = {
        **os.environ,
        "CASLIE_BOOTSTRAP_SERVERS": broker,
        "CASLIE_TOPIC_PREFIX": prefix,
        "CASLIE_CACHE_DIR": str(tmp_path),
        "CASLIE_ROUTER__PRODUCT_WAIT_S": "2",
    }
    cli = [sys.executable, "-m", "caslie"]
    created = subprocess.run([*cli, "topics", "create"], env=env, capture_output=True)
    assert created.returncode == 0, created.stderr.decode()[-2000:]
    caslie_tasks = {"AP", "CC", "PRP", "PSI", "MPC", "SA", "SR"}
    asked: set[str] = set()
    for topic in ("catalog", "reviews", "queries"):
        lines = [orjson.loads(line) for t, line in EXAMPLES if t == topic]
        if topic == "queries":
            lines = [q for q in lines if q["task"] in caslie_tasks]
            asked = {q["request_id"] for q in lines}
        key = BY_LOGICAL[topic].key
        body = b"".join(_keyed(str(v[key]), v) for v in lines)
        kcat(broker, "-P", "-t", f"{prefix}{topic}", "-K", "\t", stdin=body)
    assert len(asked) >= 7
    router = subprocess.Popen(
        [*cli, "run", "router"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ended: dict[str, str] = {}
    try:
        for topic in ("requests", "predictions"):
            out = subprocess.run(
                [*cli, "consume", topic, "--json-envelope", "--from-beginning", "--timeout", "20"],
                env=env,
                capture_output=True,
            )
            for line in out.stdout.splitlines():
                value = orjson.loads(line)["payload"]
                ended.setdefault(value["request_id"], value.get("reason", "request"))
    finally:
        router.send_signal(signal.SIGTERM)
        router.wait(60)
    assert asked <= set(ended), f"left without an answer: {sorted(asked - set(ended))}"

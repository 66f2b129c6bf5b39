"""Scale the router from one replica to three and back to one while queries flow: nothing is
lost, nothing is duplicated in exactly-once mode (at-least-once: every repeat carries the
same ``caslie-id``), no replica fails, and the group ends having committed everything.

Real ``caslie run router`` processes on Apache Kafka, each with its own ``instance_id`` and
state folder, as a StatefulSet runs them; scaling in is SIGTERM. Downstream is the router's
output, ``requests``, read with ``read_committed``: one record per query. Counts are printed
(``-s``) for the closing note.
"""

from __future__ import annotations

import collections
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from streams.clients import create_topics, make_admin, make_consumer, make_producer
from streams.config import Settings
from streams.produce import produce_event
from streams.runner import DEDUPE_HEADER
from streams.topics import TOPICS, topic_name
from tests.reliability.workers import Replicas, environment

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

#: Queries at least; more flow while the schedule is not done.
MIN_QUERIES = 2000
QUERIES_PER_S = 250
#: Enough partitions for three replicas to share.
PARTITIONS = 6
PRODUCTS = 5
#: Longest wait for a step of the schedule (a replica joining, the last request arriving).
STEP_S = 90.0
ROUTER_INPUTS = ("catalog", "reviews", "queries")


@pytest.fixture
def scale_settings(kafka_bootstrap: str) -> Settings:
    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"s{uuid.uuid4().hex[:10]}.",
        partitions=PARTITIONS,
    )
    create_topics(settings)
    _wait_for_leaders(settings)
    return settings


def _wait_for_leaders(settings: Settings, timeout: float = 30.0) -> None:
    """Until every partition of the new topics answers: the router's table follower stops
    (exit 70) on NOT_LEADER_FOR_PARTITION from a topic created a moment ago."""
    consumer = make_consumer(settings)
    deadline = time.monotonic() + timeout
    try:
        for spec in TOPICS:
            for p in range(spec.partitions or PARTITIONS):
                tp = TopicPartition(topic_name(settings, spec.logical), p)
                while True:
                    try:
                        consumer.get_watermark_offsets(tp, timeout=5)
                        break
                    except KafkaException:
                        assert time.monotonic() < deadline, f"{tp} has no leader"
                        time.sleep(0.2)
    finally:
        consumer.close()


class QueryFeed:
    """Products first, then PSI queries about them at a steady rate, in a thread, until
    :meth:`finish` is called and at least ``MIN_QUERIES`` were sent."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sent: list[str] = []
        self._enough = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def start(self) -> QueryFeed:
        producer = make_producer(self.settings)
        for i in range(PRODUCTS):
            event = {"product_id": f"p{i}", "title": f"Steel mug {i}"}
            produce_event(producer, self.settings, "catalog", event)
        assert producer.flush(30) == 0
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            producer = make_producer(self.settings)
            tick = 0.1
            per_tick = int(QUERIES_PER_S * tick)
            next_at = time.monotonic()
            while not (self._enough.is_set() and len(self.sent) >= MIN_QUERIES):
                for _ in range(per_tick):
                    rid = f"q-{len(self.sent):05d}"
                    query = {"request_id": rid, "task": "PSI", "query": "mug"}
                    query["product_id"] = f"p{len(self.sent) % PRODUCTS}"
                    produce_event(producer, self.settings, "queries", query)
                    self.sent.append(rid)
                producer.poll(0)
                next_at += tick
                time.sleep(max(0.0, next_at - time.monotonic()))
            assert producer.flush(30) == 0, "queries not delivered"
        except BaseException as exc:
            self.error = exc

    def finish(self) -> None:
        self._enough.set()
        self.thread.join(120)
        assert self.error is None, self.error
        assert not self.thread.is_alive()


class Requests:
    """Reads ``requests`` (read_committed) from the beginning: request id -> the ``caslie-id``
    of each copy."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.copies: dict[str, list[bytes]] = collections.defaultdict(list)
        self.count = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        name = topic_name(self.settings, "requests")
        consumer = make_consumer(self.settings, None, **{"enable.partition.eof": False})
        consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        try:
            while not self._stop.is_set():
                msg = consumer.poll(0.2)
                if msg is None or msg.error() is not None:
                    continue
                ident = dict(msg.headers() or []).get(DEDUPE_HEADER)
                rid = orjson.loads(msg.value() or b"{}")["request_id"]
                self.copies[rid].append(ident if isinstance(ident, bytes) else b"")
                self.count += 1
        finally:
            consumer.close()

    def has(self, expected: list[str]) -> bool:
        return all(rid in self.copies for rid in expected)

    def finish(self, quiet_s: float = 5.0) -> None:
        time.sleep(quiet_s)  # late duplicates, if any, arrive now
        self._stop.set()
        self.thread.join(30)


def _members_with_partitions(admin: AdminClient, group: str) -> int:
    try:
        [future] = admin.describe_consumer_groups([group], request_timeout=5).values()
        description = future.result()
    except Exception:
        return -1  # not known yet (no member joined)
    return sum(1 for m in description.members if m.assignment.topic_partitions)


def _committed_and_end(settings: Settings, group: str) -> dict[str, tuple[int, int]]:
    """``topic[partition]`` -> (the group's committed offset, the end offset)."""
    consumer = make_consumer(settings, group)
    try:
        tps = [
            TopicPartition(topic_name(settings, t), p)
            for t in ROUTER_INPUTS
            for p in range(PARTITIONS)
        ]
        out = {}
        for tp in consumer.committed(tps, timeout=15):
            _low, high = consumer.get_watermark_offsets(tp, timeout=15)
            # a partition nothing was written to has nothing to commit
            committed = tp.offset if tp.offset >= 0 or high > 0 else 0
            out[f"{tp.topic}[{tp.partition}]"] = (committed, high)
        return out
    finally:
        consumer.close()


class Schedule:
    """Waits for conditions while checking that no replica exited by itself."""

    def __init__(self, replicas: Replicas, admin: AdminClient, group: str) -> None:
        self.replicas = replicas
        self.admin = admin
        self.group = group
        self.max_members = 0
        self.steps: list[tuple[float, str]] = []
        self._t0 = time.monotonic()

    def note(self, what: str) -> None:
        self.steps.append((round(time.monotonic() - self._t0, 1), what))

    def until(self, what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + STEP_S
        while not done():
            exited = self.replicas.exited()
            assert not exited, f"a replica exited by itself: {exited}\n{self.replicas.logs()}"
            assert time.monotonic() < deadline, f"{what}: not in {STEP_S}s\n{self.replicas.logs()}"
            time.sleep(0.5)
        self.note(what)

    def members(self, n: int) -> Callable[[], bool]:
        def check() -> bool:
            count = _members_with_partitions(self.admin, self.group)
            self.max_members = max(self.max_members, count)
            return count == n

        return check

    def hold(self, seconds: float) -> None:
        """Let queries flow through this many replicas for a while."""
        end = time.monotonic() + seconds
        self.until(f"held {seconds}s", lambda: time.monotonic() >= end)


@pytest.mark.parametrize("delivery", ["exactly_once", "at_least_once"])
def test_router_scales_out_and_in_while_queries_flow(
    delivery: str, scale_settings: Settings, tmp_path: Path
) -> None:
    base = {
        **os.environ,
        "CASLIE_BOOTSTRAP_SERVERS": scale_settings.bootstrap_servers,
        "CASLIE_TOPIC_PREFIX": scale_settings.topic_prefix,
        "CASLIE_PARTITIONS": str(PARTITIONS),
    }
    replicas = Replicas(environment(base, delivery), "router", tmp_path)
    group = f"{scale_settings.topic_prefix}router"
    schedule = Schedule(replicas, make_admin(scale_settings), group)
    requests = Requests(scale_settings)
    started = time.monotonic()
    feed = QueryFeed(scale_settings)
    try:
        replicas.start()
        feed.start()
        schedule.until("1 replica working", lambda: requests.count > 0)
        schedule.until("1 member", schedule.members(1))
        second = replicas.start()
        schedule.until("2 members", schedule.members(2))
        schedule.hold(2)
        third = replicas.start()
        schedule.until("3 members", schedule.members(3))
        schedule.hold(4)
        for name, left in ((third, 2), (second, 1)):
            schedule.note(f"SIGTERM {name}")
            replicas.stop(name)
            schedule.until(f"{name} exited {replicas.codes[name]}", schedule.members(left))
            schedule.hold(2)
        feed.finish()
        schedule.note(f"{len(feed.sent)} queries sent")
        schedule.until("every query downstream", lambda: requests.has(feed.sent))
        requests.finish()
    finally:
        codes = replicas.stop_all()
    offsets = _committed_and_end(scale_settings, group)
    copies = [len(requests.copies.get(rid, [])) for rid in feed.sent]
    repeats_differ = [
        rid for rid, ids in requests.copies.items() if len(ids) > 1 and len(set(ids)) > 1
    ]
    behind = {tp: ce for tp, ce in offsets.items() if ce[0] != ce[1]}
    report: dict[str, Any] = {
        "test": f"scale-{delivery}",
        "queries": len(feed.sent),
        "downstream": requests.count,
        "duplicates": sum(c - 1 for c in copies if c > 1),
        "lost": sum(1 for c in copies if c == 0),
        "repeats_with_other_caslie_id": len(repeats_differ),
        "max_members_with_partitions": schedule.max_members,
        "aborted_transactions": replicas.logs(tail=10**9).count("transaction aborted"),
        "exit_codes": codes,
        "uncommitted_partitions": behind,
        "steps": schedule.steps,
        "wall_s": round(time.monotonic() - started, 1),
    }
    print(orjson.dumps(report).decode())
    assert report["queries"] >= MIN_QUERIES
    assert schedule.max_members == 3
    assert codes == dict.fromkeys(codes, 0), f"every replica exits 0\n{replicas.logs()}"
    assert report["lost"] == 0, replicas.logs()
    assert not behind, "the group's committed offsets are the end offsets"
    if delivery == "exactly_once":
        assert report["duplicates"] == 0, replicas.logs()
    else:
        assert not repeats_differ, "every repeat carries the caslie-id of its first copy"

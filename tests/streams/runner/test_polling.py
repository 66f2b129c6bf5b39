"""The poll thread on the memory broker: rebalances with records buffered, backpressure."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence

import pytest
from confluent_kafka import TopicPartition
from prometheus_client import REGISTRY

from streams.config import BatchSettings
from streams.offsets import OffsetTracker
from streams.runner.handoff import Handoff
from streams.runner.polling import Poller
from streams.stage import Inbound, Result
from streams.topics import topic_name
from tests.support.memory_broker import MemoryBroker, MemoryClients, MemoryConsumer
from tests.support.memory_runner import (
    Running,
    make_runner,
    memory_settings,
    output_ids,
    wait_until,
)
from tests.support.runner import CopyStage, request_bytes


class GatedCopy(CopyStage):
    """A copy stage whose first batch waits until the test releases it."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.first: list[str] = []
        self.consumer: MemoryConsumer | None = None
        #: Request ids of the batches that started after every rebalance was handled.
        self.after: list[str] = []

    def process(self, batch: Sequence[Inbound]) -> Sequence[Result]:
        ids = [item.value.request_id for item in batch]  # type: ignore[attr-defined]
        if not self.entered.is_set():
            self.first = ids
            self.entered.set()
            assert self.release.wait(10)
        assert self.consumer is not None
        if self.consumer.rebalances_done == 3:  # the first assignment, leaving, assigning
            self.after.extend(ids)
        return super().process(batch)


@pytest.mark.parametrize(
    ("delivery", "leave"),
    [
        ("at_least_once", "revoke"),
        ("at_least_once", "lose"),
        ("exactly_once", "revoke"),
        ("exactly_once", "lose"),
    ],
)
def test_records_buffered_before_a_revocation_are_processed_once(delivery: str, leave: str) -> None:
    """Defect 2: a partition revoked (or lost) with records buffered, then assigned again
    (sticky): the buffered copies are dropped, the records read again are processed once.
    A lost partition commits nothing, so what was processed of it before is processed again,
    at most once more."""
    settings = memory_settings(delivery)
    requests = topic_name(settings, "requests")
    broker = MemoryBroker()
    n = 40
    for i in range(n):
        broker.append(requests, request_bytes(f"r-{i}"))
    stage = GatedCopy()
    clients = MemoryClients(broker)
    runner = make_runner(stage, settings, clients, "g")
    consumer = stage.consumer = clients.consumers[0]
    with Running(runner):
        assert stage.entered.wait(10)  # the first batch is in the stage, the rest buffered
        wait_until(
            lambda: consumer.position([TopicPartition(requests, 0)])[0].offset == n,
            "every record consumed",
        )
        getattr(broker, leave)([(requests, 0)])
        broker.assign([(requests, 0)])
        wait_until(lambda: broker.pending_rebalances() == 0, "the rebalance started")
        stage.release.set()
        # a last record: when it is committed, every copy buffered before it was taken
        broker.append(requests, request_bytes("r-last"))
        wait_until(lambda: broker.committed_offset("g", requests) == n + 1, "all committed")
        wait_until(lambda: "r-last" in output_ids(broker, settings), "the last output")
    # the copies buffered before the partition left were dropped, not processed beside the
    # ones read again
    assert stage.after and max(Counter(stage.after).values()) == 1
    counts = Counter(output_ids(broker, settings))
    assert set(counts) == {f"r-{i}" for i in range(n)} | {"r-last"}
    if (delivery, leave) == ("at_least_once", "lose"):
        # nothing of a lost partition commits: what was processed before is processed again
        assert all(counts[rid] == 2 for rid in stage.first)
        assert max(counts.values()) == 2
    else:
        assert max(counts.values()) == 1
    assert runner._tracker.in_flight() == 0  # no output acknowledged twice


def test_backpressure_pauses_and_resumes_and_everything_is_processed() -> None:
    settings = memory_settings(max_batch=2, max_in_flight=4)
    requests = topic_name(settings, "requests")
    broker = MemoryBroker(partitions=2)
    n = 40
    for i in range(n):
        broker.append(requests, request_bytes(f"r-{i}"), partition=i % 2)
    clients = MemoryClients(broker)
    runner = make_runner(CopyStage(delay=0.005), settings, clients, "g")
    with Running(runner):
        wait_until(
            lambda: [broker.committed_offset("g", requests, p) for p in (0, 1)] == [n // 2] * 2,
            "all committed",
        )
    consumer = clients.consumers[0]
    both = sorted([(requests, 0), (requests, 1)])
    assert sorted(consumer.pause_calls[0]) == both
    pauses = len(consumer.pause_calls)
    assert pauses > 1  # paused again after a resume: it did not just stay paused
    assert sorted(output_ids(broker, settings)) == sorted(f"r-{i}" for i in range(n))
    assert consumer.resumed_unpaused == []  # librdkafka #4686's trigger, never pulled


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_a_fetch_position_the_client_moves_back_repeats_nothing(delivery: str) -> None:
    """librdkafka can move a partition's fetch position back by itself (CI saw the router
    read ``queries.waiting`` from offset 0 again, 178 committed records later, and publish
    them twice in exactly-once mode): records this assignment read already are dropped and
    counted, never processed twice."""
    settings = memory_settings(delivery)
    requests = topic_name(settings, "requests")
    broker = MemoryBroker()
    n = 30
    for i in range(n):
        broker.append(requests, request_bytes(f"r-{i}"))
    clients = MemoryClients(broker)
    runner = make_runner(CopyStage(), settings, clients, "g")
    labels = {"stage": runner.stage.name, "topic": requests}
    before = REGISTRY.get_sample_value("caslie_records_redelivered_total", labels) or 0.0
    with Running(runner):
        wait_until(lambda: broker.committed_offset("g", requests) == n, "all committed")
        clients.consumers[0].fetch_from((requests, 0), 0)  # committed, and read again
        broker.append(requests, request_bytes("r-last"))
        wait_until(lambda: broker.committed_offset("g", requests) == n + 1, "the last committed")
        wait_until(lambda: "r-last" in output_ids(broker, settings), "the last output")
    counts = Counter(output_ids(broker, settings))
    assert set(counts) == {f"r-{i}" for i in range(n)} | {"r-last"}
    assert max(counts.values()) == 1
    after = REGISTRY.get_sample_value("caslie_records_redelivered_total", labels)
    assert after == before + n


class _Message:
    """What ``_accept`` reads of a consumed record."""

    def __init__(self, offset: int) -> None:
        self._offset = offset

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


def test_a_position_moved_back_inside_one_consume_result_is_dropped_too() -> None:
    """The client's reset can land in the middle of one ``consume()`` result (old records,
    then the partition from an earlier offset): only the records past what the assignment
    read reach the hand-off, in order."""
    tracker, handoff = OffsetTracker(), Handoff()
    poller = Poller(
        MemoryConsumer(MemoryBroker(), {"group.id": "g"}),
        ["t"],
        BatchSettings(),
        tracker,
        handoff,
        {"stage": "copy"},
        lambda exc: None,
    )
    poller._accept([_Message(o) for o in range(5)])
    poller._accept([_Message(o) for o in (5, 6, 2, 3, 4, 5, 6, 7)])
    taken = handoff.take(100, 0.0, lambda chunk: True)
    assert [m.offset() for c in taken for m in c.messages] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert tracker.next_offset(("t", 0)) == 8

"""Exactly-once commits on the memory broker: an abortable commit, a fenced producer."""

from __future__ import annotations

from confluent_kafka import KafkaError

from streams.exceptions import StreamError
from streams.runner import transactional_id
from streams.topics import topic_name
from tests.support.memory_broker import MemoryBroker, MemoryClients
from tests.support.memory_runner import (
    Running,
    make_runner,
    memory_settings,
    output_ids,
    wait_until,
)
from tests.support.runner import CopyStage, request_bytes


def test_an_abortable_commit_aborts_rewinds_and_goes_on() -> None:
    """The first transaction's commit fails with an abortable error: it is aborted, its
    records are read again, and every record ends committed exactly once."""
    settings = memory_settings("exactly_once")
    requests = topic_name(settings, "requests")
    broker = MemoryBroker()
    n = 20
    for i in range(n):
        broker.append(requests, request_bytes(f"r-{i}"))
    broker.fail_next_commit(KafkaError(KafkaError._TIMED_OUT, "lost", txn_requires_abort=True))
    runner = make_runner(CopyStage(), settings, MemoryClients(broker), "g")
    with Running(runner) as run:
        wait_until(lambda: broker.committed_offset("g", requests) == n, "all committed")
        assert run.error is None and run.thread.is_alive()  # it went on
    assert broker.aborted == 1
    assert sorted(output_ids(broker, settings)) == sorted(f"r-{i}" for i in range(n))
    assert len(output_ids(broker, settings, read_committed=False)) > n  # the aborted copies


def test_a_failed_delivery_fails_the_transaction_not_the_stage() -> None:
    """Exactly-once, a record of the first transaction is never delivered (its message timed
    out: the broker was away past the message timeout). The stage does not stop: librdkafka
    fails the commit abortable, the batch is aborted and read again, and every record ends
    committed exactly once (CI saw a worker exit 70 on this after a broker pause)."""
    settings = memory_settings("exactly_once")
    requests = topic_name(settings, "requests")
    broker = MemoryBroker()
    n = 12
    for i in range(n):
        broker.append(requests, request_bytes(f"r-{i}"))
    broker.fail_next_delivery(KafkaError(KafkaError._MSG_TIMED_OUT, "Message timed out"))
    runner = make_runner(CopyStage(), settings, MemoryClients(broker), "g")
    with Running(runner) as run:
        wait_until(lambda: broker.committed_offset("g", requests) == n, "all committed")
        assert run.error is None and run.thread.is_alive()  # it went on
    assert broker.aborted == 1
    assert sorted(output_ids(broker, settings)) == sorted(f"r-{i}" for i in range(n))


def test_a_fenced_producer_stops_the_stage_naming_its_transactional_id() -> None:
    settings = memory_settings("exactly_once")
    requests = topic_name(settings, "requests")
    broker = MemoryBroker()
    for i in range(4):
        broker.append(requests, request_bytes(f"r-{i}"))
    runner = make_runner(CopyStage(), settings, MemoryClients(broker), "g")
    with Running(runner) as run:
        wait_until(lambda: broker.committed_offset("g", requests) == 4, "the first batch")
        broker.fence(transactional_id(settings, "g"))  # another replica with instance test-0
        broker.append(requests, request_bytes("r-4"))
        error = run.join()
    assert isinstance(error, StreamError)
    assert "'g.test-0'" in str(error) and "share one instance_id" in str(error)
    assert broker.committed_offset("g", requests) == 4
    assert output_ids(broker, settings) == [f"r-{i}" for i in range(4)]


def test_a_failed_offset_commit_is_retried_at_least_once() -> None:
    settings = memory_settings()
    requests = topic_name(settings, "requests")
    broker = MemoryBroker()
    for i in range(8):
        broker.append(requests, request_bytes(f"r-{i}"))
    broker.fail_next_commit(KafkaError(KafkaError.COORDINATOR_NOT_AVAILABLE, "coordinator away"))
    runner = make_runner(CopyStage(), settings, MemoryClients(broker), "g")
    with Running(runner):
        wait_until(lambda: broker.committed_offset("g", requests) == 8, "all committed")
    assert broker.commit_failure is None  # the failure happened
    assert sorted(output_ids(broker, settings)) == sorted(f"r-{i}" for i in range(8))


def test_committed_transactions_leave_nothing_tracked() -> None:
    """Exactly-once kept every consumed offset in the tracker until a rebalance (about
    150 bytes a record, gigabytes an hour at the router's rate): a commit drops them."""
    settings = memory_settings("exactly_once", max_batch=5)
    requests = topic_name(settings, "requests")
    broker = MemoryBroker()
    for i in range(40):
        broker.append(requests, request_bytes(f"r-{i}"))
    runner = make_runner(CopyStage(), settings, MemoryClients(broker), "g")
    with Running(runner):
        wait_until(lambda: broker.committed_offset("g", requests) == 40, "all committed")
        tracked = sum(len(p.outstanding) for p in runner._tracker._parts.values())
        assert tracked <= 5  # at most the records of the last batch, not all 40

"""StageRunner on the memory broker: the clients it configures, and stopping."""

from __future__ import annotations

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


def test_max_poll_interval_from_settings_reaches_the_consumer() -> None:
    """Defect 11: the runner overrode the user's ``max.poll.interval.ms`` with 300000."""
    settings = memory_settings().model_copy(update={"kafka": {"max.poll.interval.ms": "900000"}})
    clients = MemoryClients(MemoryBroker())
    make_runner(CopyStage(), settings, clients, "g")
    (consumer,) = clients.consumers
    assert consumer.config["max.poll.interval.ms"] == "900000"
    assert consumer.config["group.id"] == "g"


def test_stopping_with_records_buffered_commits_what_was_finished_and_returns() -> None:
    """Defect 9: stopping waited in ``on_revoke`` for buffered records nobody would process
    (30 s). Now ``run()`` returns after the batch in progress, with what it finished
    committed and the rest left for the next owner."""
    settings = memory_settings()
    requests = topic_name(settings, "requests")
    broker = MemoryBroker()
    n = 200
    for i in range(n):
        broker.append(requests, request_bytes(f"r-{i}"))
    stage = CopyStage(delay=0.02)
    clients = MemoryClients(broker)
    runner = make_runner(stage, settings, clients, "g")
    with Running(runner) as run:
        wait_until(lambda: len(stage.batches) >= 3, "a few batches processed")
        run.stop.set()
        assert run.join() is None  # a hang guard (10 s), not a performance bound
    finished = output_ids(broker, settings)
    assert 0 < len(finished) < n  # stopped with records left over
    assert broker.committed_offset("g", requests) == len(finished)
    assert clients.consumers[0].closed

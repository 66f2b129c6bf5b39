"""Dispatch on the memory broker: undecodable records go to the DLQ and the stage goes on."""

from __future__ import annotations

import orjson
import pytest

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


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_an_undecodable_record_goes_to_the_dlq_and_the_stage_goes_on(delivery: str) -> None:
    settings = memory_settings(delivery)
    requests = topic_name(settings, "requests")
    broker = MemoryBroker()
    for value in [request_bytes("a"), b"\xff garbage", request_bytes("b")]:
        broker.append(requests, value)
    runner = make_runner(CopyStage(), settings, MemoryClients(broker), "g")
    with Running(runner):
        wait_until(lambda: broker.committed_offset("g", requests) == 3, "all committed")
    assert output_ids(broker, settings) == ["a", "b"]
    (envelope,) = [orjson.loads(v) for v in broker.values(topic_name(settings, "dlq"))]
    assert envelope["error_kind"] == "undecodable"
    assert envelope["offset"] == 1

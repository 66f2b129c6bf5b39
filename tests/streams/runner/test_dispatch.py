"""Dispatch on the memory broker: undecodable records go to the DLQ and the stage goes on;
a dead-lettered request ends its query with one failure on ``predictions``."""

from __future__ import annotations

import orjson
import pytest
from confluent_kafka import KafkaError

from schemas.records import PredictionFailure, parse_prediction
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


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_a_rejected_request_ends_its_query_with_one_failure_beside_its_envelope(
    delivery: str,
) -> None:
    settings = memory_settings(delivery)
    requests = topic_name(settings, "requests")
    broker = MemoryBroker()
    invalid = b'{"request_id": "bad-1", "task": "SA", "inputs": 5}'  # readable, not valid
    values = [request_bytes("a"), request_bytes("reject-1"), invalid, b"\xff no id"]
    for i, value in enumerate(values):
        broker.append(requests, value, key=f"k{i}".encode())
    runner = make_runner(CopyStage(), settings, MemoryClients(broker), "g")
    with Running(runner):
        wait_until(lambda: broker.committed_offset("g", requests) == 4, "all committed")
    assert output_ids(broker, settings) == ["a"]
    envelopes = sorted(
        (orjson.loads(v) for v in broker.values(topic_name(settings, "dlq"))),
        key=lambda e: e["offset"],
    )
    assert [e.get("request_id") for e in envelopes] == ["reject-1", "bad-1", None]
    assert [e["payload"].encode("utf-8") for e in envelopes[:2]] == values[1:3]  # whole
    assert not any(e["payload_truncated"] for e in envelopes)
    failures = sorted(broker.keyed(topic_name(settings, "predictions")), reverse=True)
    assert [(key, dedupe) for key, _, dedupe in failures] == [
        (b"reject-1", "reject-1:failed"),
        (b"bad-1", "bad-1:failed"),
    ]
    rejected, schema = (parse_prediction(value) for _, value, _ in failures)
    assert isinstance(rejected, PredictionFailure) and isinstance(schema, PredictionFailure)
    assert (rejected.stage, rejected.error_kind, rejected.task) == ("copy", "processing", "SA")
    assert rejected.reason == "rejected by the stage"
    assert schema.error_kind == "schema" and "inputs" in schema.reason


def test_an_aborted_batch_leaves_no_failure_record_behind() -> None:
    settings = memory_settings("exactly_once")
    requests = topic_name(settings, "requests")
    broker = MemoryBroker()
    broker.append(requests, request_bytes("reject-1"))
    broker.fail_next_commit(KafkaError(KafkaError._TIMED_OUT, "lost", txn_requires_abort=True))
    runner = make_runner(CopyStage(), settings, MemoryClients(broker), "g")
    with Running(runner):
        wait_until(lambda: broker.committed_offset("g", requests) == 1, "committed at last")
    predictions = topic_name(settings, "predictions")
    assert [dedupe for _, _, dedupe in broker.keyed(predictions)] == ["reject-1:failed"]
    assert len(broker.values(topic_name(settings, "dlq"))) == 1
    assert len(broker.values(predictions, read_committed=False)) == 2  # the aborted copy

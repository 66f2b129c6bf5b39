"""Exactly-once mode of the stage runner on Apache Kafka: one transaction per batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from schemas.records import PredictionFailure, parse_prediction
from streams.config import Settings
from streams.consume import consume_records
from streams.runner import StageRunner
from streams.runner.clients import KafkaClients
from tests.support.runner import (
    CopyStage,
    collect_in_background,
    committed_total,
    produce_requests,
    read_topic,
    request_bytes,
    run_runner,
)

pytestmark = pytest.mark.kafka


def _eos(settings: Settings) -> Settings:
    return settings.model_copy(update={"delivery": "exactly_once", "instance_id": "test-0"})


def _read_uncommitted(settings: Settings, logical: str, n: int) -> list[dict[str, Any]]:
    return [
        orjson.loads(v)
        for v in consume_records(
            settings.model_copy(update={"kafka": {"isolation.level": "read_uncommitted"}}),
            logical,
            max_records=n,
            idle_timeout=10,
            from_beginning=True,
        )
    ]


def test_exactly_once_outputs_dlq_and_offsets_commit_together(kafka_settings: Settings) -> None:
    settings = _eos(kafka_settings)
    good = [f"ok-{i}" for i in range(20)]
    values = [request_bytes(r) for r in good[:10]] + [b"\xff garbage", request_bytes("reject-1")]
    values += [request_bytes(r) for r in good[10:]]
    produce_requests(settings, values)

    captioned, done = collect_in_background(settings, "captioned", len(good))
    assert run_runner(StageRunner(CopyStage(), settings, group_id="g-eos"), done) is None
    assert sorted(r["request_id"] for r in captioned) == sorted(good)
    assert sorted(e["error_kind"] for e in read_topic(settings, "dlq", 2)) == [
        "processing",
        "undecodable",
    ]
    assert committed_total(settings, "g-eos") == len(values)


class _FailsBeforeCommit:
    """The real transactional producer, except that committing the offsets fails."""

    def __init__(self, producer: Any) -> None:
        self._producer = producer

    def send_offsets_to_transaction(self, *args: object) -> None:
        assert self._producer.flush(30) == 0  # the outputs are on the broker, uncommitted
        raise RuntimeError("crash between produce and commit")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)


class _Wrapped(KafkaClients):
    """Real clients, the producer wrapped."""

    def __init__(self, wrap: Callable[[Producer], Any]) -> None:
        self._wrap = wrap

    def producer(self, config: dict[str, Any]) -> Producer:
        return self._wrap(Producer(config))  # type: ignore[no-any-return]


def test_a_failure_record_commits_in_the_transaction_of_its_envelope(
    kafka_settings: Settings,
) -> None:
    """A rejected request's failure on ``predictions`` is written with its DLQ envelope and
    input offset: an aborted transaction leaves neither visible, the next one commits one of
    each."""
    settings = _eos(kafka_settings)
    produce_requests(settings, [request_bytes("reject-1")])
    crashing = StageRunner(
        CopyStage(), settings, group_id="g-eos-fail", clients=_Wrapped(_FailsBeforeCommit)
    )
    assert isinstance(run_runner(crashing, timeout=60), RuntimeError)
    assert [r["request_id"] for r in _read_uncommitted(settings, "predictions", 1)] == ["reject-1"]
    committed = consume_records(
        settings, "predictions", from_beginning=True, to_end=True, idle_timeout=10
    )
    assert list(committed) == [], "the aborted failure record is invisible"

    failures, done = collect_in_background(settings, "predictions", 1)
    assert run_runner(StageRunner(CopyStage(), settings, group_id="g-eos-fail"), done) is None
    [failure] = [parse_prediction(orjson.dumps(f)) for f in failures]
    assert isinstance(failure, PredictionFailure)
    assert (failure.request_id, failure.stage, failure.reason) == (
        "reject-1",
        "copy",
        "rejected by the stage",
    )
    envelopes = consume_records(settings, "dlq", from_beginning=True, to_end=True, idle_timeout=10)
    assert [orjson.loads(e)["request_id"] for e in envelopes] == ["reject-1"]
    assert committed_total(settings, "g-eos-fail") == 1


class _AbortableOnce(_FailsBeforeCommit):
    """Committing the first transaction's offsets fails as a stale group generation does."""

    failed = 0

    def send_offsets_to_transaction(self, *args: object) -> None:
        if self.failed:
            self._producer.send_offsets_to_transaction(*args)
            return
        type(self).failed += 1
        assert self._producer.flush(30) == 0
        raise KafkaException(
            KafkaError(KafkaError.ILLEGAL_GENERATION, "stale generation", txn_requires_abort=True)
        )


def test_an_abortable_commit_aborts_rewinds_and_goes_on(kafka_settings: Settings) -> None:
    """A transaction whose offsets cannot be committed (a rebalance moved the generation) is
    aborted and its partitions are read again: the stage neither stops nor duplicates."""
    settings = _eos(kafka_settings)
    ids = [f"a-{i}" for i in range(30)]
    produce_requests(settings, [request_bytes(r) for r in ids])
    captioned, done = collect_in_background(settings, "captioned", len(ids))
    runner = StageRunner(
        CopyStage(), settings, group_id="g-eos-abortable", clients=_Wrapped(_AbortableOnce)
    )
    assert run_runner(runner, done) is None
    assert _AbortableOnce.failed == 1
    assert sorted(r["request_id"] for r in captioned) == sorted(ids)
    written = _read_uncommitted(settings, "captioned", len(ids) + 50)
    assert len(written) > len(ids), "the aborted transaction's outputs were in the log"
    assert committed_total(settings, "g-eos-abortable") == len(ids)


def test_exactly_once_aborts_and_replays_without_duplicates(kafka_settings: Settings) -> None:
    settings = _eos(kafka_settings).model_copy(
        update={"batch": kafka_settings.batch.model_copy(update={"max_batch": 50})}
    )
    ids = [f"r-{i}" for i in range(12)]
    produce_requests(settings, [request_bytes(r) for r in ids])

    # First run: the outputs of the first batch reach the broker, then committing the
    # offsets fails, as a crash between produce and commit would.
    crashing = StageRunner(
        CopyStage(), settings, group_id="g-eos-abort", clients=_Wrapped(_FailsBeforeCommit)
    )
    error = run_runner(crashing, timeout=60)
    assert isinstance(error, RuntimeError)
    written = _read_uncommitted(settings, "captioned", len(ids))
    assert written, "the aborted batch's outputs were written to the log"
    assert committed_total(settings, "g-eos-abort") == 0

    # Second run: everything is processed again; read_committed readers see each once.
    captioned, done = collect_in_background(settings, "captioned", len(ids))
    assert run_runner(StageRunner(CopyStage(), settings, group_id="g-eos-abort"), done) is None
    assert sorted(r["request_id"] for r in captioned) == sorted(ids)
    extra = list(
        consume_records(
            settings, "captioned", max_records=len(ids) + 1, idle_timeout=5, from_beginning=True
        )
    )
    assert len(extra) == len(ids), "a read_committed reader sees no aborted record"
    assert committed_total(settings, "g-eos-abort") == len(ids)

"""The table follower's start: a partition without a leader yet is asked again."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.router import tables


class _NoLeaderAtFirst:
    """A consumer whose partition gets its leader after ``failures`` calls."""

    def __init__(self, failures: int, code: int = KafkaError.NOT_LEADER_FOR_PARTITION) -> None:
        self.failures = failures
        self.code = code
        self.calls = 0

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        self.calls += 1
        if self.calls <= self.failures:
            raise KafkaException(KafkaError(self.code, "Broker: Not leader for partition"))
        return 0, 7


def test_a_partition_without_a_leader_yet_is_asked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A router started right after its topics were created stopped its table follower
    (and exited 70) on NOT_LEADER_FOR_PARTITION."""
    monkeypatch.setattr(tables.time, "sleep", lambda _s: None)
    consumer = _NoLeaderAtFirst(failures=2)
    assert tables._watermarks(consumer, TopicPartition("t", 0)) == (0, 7)  # type: ignore[arg-type]
    assert consumer.calls == 3


def test_other_errors_are_not_waited_out() -> None:
    consumer = _NoLeaderAtFirst(failures=1, code=KafkaError.TOPIC_AUTHORIZATION_FAILED)
    with pytest.raises(KafkaException):
        tables._watermarks(consumer, TopicPartition("t", 0))  # type: ignore[arg-type]

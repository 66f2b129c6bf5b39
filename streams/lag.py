"""A consumer group's committed offsets against the high watermarks of its topics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confluent_kafka import TopicPartition

from streams.clients import make_consumer
from streams.config import Settings
from streams.topics import topic_name


@dataclass(frozen=True)
class GroupLag:
    committed: int  # sum of committed positions (0 where nothing is committed yet)
    end: int  # sum of high watermarks
    lag: int  # records past the committed positions


def partitions(consumer: Any, name: str) -> list[TopicPartition]:
    metadata = consumer.list_topics(name, timeout=10)
    topic = metadata.topics.get(name)
    if topic is None or topic.error is not None:
        return []
    return [TopicPartition(name, p) for p in sorted(topic.partitions)]


def end_offsets(consumer: Any, tps: list[TopicPartition]) -> dict[tuple[str, int], int]:
    ends = {}
    for tp in tps:
        _low, high = consumer.get_watermark_offsets(tp, timeout=10)
        ends[(tp.topic, tp.partition)] = max(0, high)
    return ends


def topic_ends(settings: Settings, logical_topics: tuple[str, ...]) -> dict[tuple[str, int], int]:
    """High watermark of every partition of the topics (missing topics: none)."""
    probe = make_consumer(settings)
    try:
        tps = [tp for t in logical_topics for tp in partitions(probe, topic_name(settings, t))]
        return end_offsets(probe, tps)
    finally:
        probe.close()


def committed_offsets(
    settings: Settings, group: str, where: list[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """The group's committed position in each partition (0 where nothing is committed)."""
    if not where:
        return {}
    reader = make_consumer(settings, group, **{"enable.auto.commit": False})
    try:
        positions = reader.committed([TopicPartition(t, p) for t, p in where], timeout=10)
    finally:
        reader.close()
    return {(tp.topic, tp.partition): max(0, tp.offset) for tp in positions}


def group_lag(settings: Settings, group: str, logical_topics: tuple[str, ...]) -> GroupLag:
    ends = topic_ends(settings, logical_topics)
    committed = lag = 0
    for where, done in committed_offsets(settings, group, list(ends)).items():
        committed += done
        lag += max(0, ends[where] - done)
    return GroupLag(committed, sum(ends.values()), lag)

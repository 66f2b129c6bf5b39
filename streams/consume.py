"""Read a topic's records (the ``caslie consume`` command): values, or kcat-like envelopes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from streams.clients import make_consumer
from streams.config import Settings
from streams.runner import DEDUPE_HEADER
from streams.topics import logical_name, topic_name


def consume_records(
    settings: Settings,
    topic: str,
    max_records: int | None = None,
    idle_timeout: float | None = None,
    from_beginning: bool = False,
    dedupe: bool = False,
    stop: threading.Event | None = None,
    to_end: bool = False,
) -> Iterator[bytes]:
    """Yield record values; see ``consume_messages``."""
    for msg in consume_messages(
        settings, topic, max_records, idle_timeout, from_beginning, dedupe, stop, to_end
    ):
        yield msg.value() or b""


def consume_messages(
    settings: Settings,
    topic: str,
    max_records: int | None = None,
    idle_timeout: float | None = None,
    from_beginning: bool = False,
    dedupe: bool = False,
    stop: threading.Event | None = None,
    to_end: bool = False,
    group: str | None = None,
) -> Iterator[Message]:
    """Yield records, reading every partition by direct assignment (no consumer group:
    nothing is committed and no group join delays the first record), or, with ``group``,
    as a member of that consumer group: it resumes at the group's committed offsets (a new
    group starts at the beginning with ``from_beginning``, else at the end) and commits each
    record once the caller has taken the next one or the read ends.

    Stops after ``max_records``, after ``idle_timeout`` seconds without a record, when
    ``stop`` is set, or (``to_end``, direct assignment only) once every partition has been
    read up to the end offset it had when the read began: a bounded read, which a steady
    stream of new records cannot keep going. (A transaction's commit marker takes an offset
    of its own, so the end is judged by the consumer's position, not by the last record's
    offset.)
    """
    if group is not None and to_end:
        raise ValueError("to_end needs direct assignment, not a consumer group")
    name = topic_name(settings, logical_name(settings, topic))
    extra: dict[str, object] = {"enable.partition.eof": False}
    if group is not None:
        extra |= {
            "enable.auto.commit": True,
            "auto.offset.reset": "earliest" if from_beginning else "latest",
        }
    consumer = make_consumer(settings, group, **extra)
    metadata = consumer.list_topics(name, timeout=15)
    partitions = metadata.topics[name].partitions if name in metadata.topics else {}
    if not partitions or metadata.topics[name].error is not None:
        consumer.close()
        raise KeyError(f"topic {name} does not exist (run 'caslie topics create')")
    ends: dict[int, int] = {}
    if group is not None:
        consumer.subscribe([name])
    else:
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        assigned = [TopicPartition(name, p, start) for p in sorted(partitions)]
        ends = _end_offsets(consumer, assigned) if to_end else {}
        consumer.assign(assigned)
    seen: set[bytes] = set()
    count = 0
    last = time.monotonic()
    try:
        while max_records is None or count < max_records:
            if stop is not None and stop.is_set():
                break
            if to_end and _reached(consumer, ends):
                break
            msg = consumer.poll(0.2)
            if msg is None:
                if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                    break
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(f"consumer error: {err}")
            last = time.monotonic()
            if dedupe:
                ident = dict(msg.headers() or []).get(DEDUPE_HEADER)
                if isinstance(ident, bytes):
                    if ident in seen:
                        if group is not None:
                            consumer.store_offsets(message=msg)
                        continue
                    seen.add(ident)
            count += 1
            yield msg
            if group is not None:
                consumer.store_offsets(message=msg)
    finally:
        consumer.close()  # a group member commits its stored offsets here


_TIMESTAMP_TYPES = {TIMESTAMP_CREATE_TIME: "create", TIMESTAMP_LOG_APPEND_TIME: "logappend"}


def envelope(msg: Message) -> dict[str, Any]:
    """A record as kcat ``-J`` prints it: topic, partition, offset, ``tstype`` (create,
    logappend or none) and ``ts`` (ms), ``headers`` as a flat ``[name, value, ...]`` list,
    ``key``, and ``payload``: the value's JSON when it parses, else its text (``None`` for a
    null value). Bytes that are no UTF-8 are shown with replacement characters."""
    ts_type, ts = msg.timestamp()
    headers: list[str | None] = []
    for pair in msg.headers() or []:
        headers += [pair[0], _text(pair[1])]
    value = msg.value()
    payload: Any = None
    if value is not None:
        try:
            payload = orjson.loads(value)
        except orjson.JSONDecodeError:
            payload = _text(value)
    return {
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "tstype": _TIMESTAMP_TYPES.get(ts_type, "none"),
        "ts": ts if ts_type in _TIMESTAMP_TYPES else None,
        "headers": headers,
        "key": _text(msg.key()),
        "payload": payload,
    }


def _text(raw: str | bytes | None) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    return raw.decode("utf-8", errors="replace")


def _end_offsets(consumer: Consumer, partitions: list[TopicPartition]) -> dict[int, int]:
    """Partition -> its end offset now, for the partitions that hold records."""
    ends: dict[int, int] = {}
    for tp in partitions:
        low, high = _watermarks(consumer, tp)
        if high > low:
            ends[tp.partition] = high
    return ends


#: Errors of a partition whose leader is not elected yet.
_ELECTION = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)


def _watermarks(consumer: Consumer, tp: TopicPartition, timeout: float = 15.0) -> tuple[int, int]:
    """A partition's watermarks, waiting out a leader election (a topic just created)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0]
            waiting = error.retriable() or error.code() in _ELECTION
            if not waiting or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _reached(consumer: Consumer, ends: dict[int, int]) -> bool:
    """Whether every partition's position has reached its end offset."""
    if not ends:
        return True
    name = consumer.assignment()[0].topic
    positions = consumer.position([TopicPartition(name, p) for p in ends])
    return all(tp.offset >= ends[tp.partition] for tp in positions)

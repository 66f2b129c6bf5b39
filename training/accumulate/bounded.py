"""``caslie dataset accumulate``: the accumulator until it has caught up, then exit.

Takes the end offsets of ``enriched`` and ``labels`` at its start, runs the stage (same
consumer group and state as ``caslie run accumulator``: do not run both at once) until the
group's committed offsets reach them, stops the runner (which commits), then finishes the
stage (the unwritten joins as a last shard, marked written in the changelog)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from streams.clients import make_consumer
from streams.config import Settings
from streams.exceptions import StreamError
from streams.lag import committed_offsets, topic_ends
from streams.runner import StageRunner
from streams.topics import topic_name
from training.accumulate.app import build_accumulator
from training.accumulate.stage import STAGE

log = logging.getLogger(__name__)
_CHECK_EVERY_S = 0.5


@dataclass(frozen=True)
class Accumulated:
    """What one bounded run did."""

    rows_written: int
    records: int  # input records up to the end offsets taken at the start


def accumulate(settings: Settings, stop: threading.Event, timeout_s: float = 3600.0) -> Accumulated:
    """Run the accumulator up to the input topics' end offsets taken now. Raises
    :class:`StreamError` when the topics are missing, the stage fails, or it has not caught
    up within ``timeout_s`` (nothing is lost: the next run goes on)."""
    group = f"{settings.topic_prefix}{STAGE}"
    stage = build_accumulator(settings)
    errors: list[BaseException] = []
    try:
        ends = topic_ends(settings, stage.input_topics)
        counts = {
            t: sum(1 for tp in ends if tp[0] == topic_name(settings, t)) for t in stage.input_topics
        }
        if len(set(counts.values())) > 1:
            raise StreamError(
                "the join needs enriched and labels co-partitioned (the same partition count): "
                + ", ".join(f"{t} has {n}" for t, n in counts.items())
            )
        missing = [
            t
            for t in stage.input_topics
            if not any(tp[0] == topic_name(settings, t) for tp in ends)
        ]
        if missing:
            raise StreamError(
                f"topics {', '.join(missing)} are missing (create them with 'caslie topics create')"
            )
        runner = StageRunner(stage, settings, group_id=group)
        halt = threading.Event()

        def target() -> None:
            try:
                runner.run(halt)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=target, name="accumulate-bounded")
        thread.start()
        deadline = time.monotonic() + timeout_s
        try:
            while thread.is_alive() and not stop.is_set():
                if stage.ready(0) and _caught_up(settings, group, ends):
                    break
                if time.monotonic() > deadline:
                    raise StreamError(f"not caught up within {timeout_s:.0f}s (run it again)")
                time.sleep(_CHECK_EVERY_S)
        finally:
            halt.set()
            thread.join()
        if errors:
            raise StreamError(f"the accumulator failed: {type(errors[0]).__name__}: {errors[0]}")
        stage.finish()
        return Accumulated(stage.rows_written, sum(ends.values()))
    finally:
        if stage.follower is not None:
            stage.follower.close()  # again after finish(): harmless


def _caught_up(settings: Settings, group: str, ends: dict[tuple[str, int], int]) -> bool:
    """Whether the group has committed everything up to ``ends``. A partition whose commit is
    below its end offset may still be done: a transaction's commit marker (inputs written in
    exactly-once mode) or records removed by retention take offsets no consumer is handed,
    so the commit can stay below the end for good; :func:`_nothing_left` reads what lies
    between as a ``read_committed`` consumer would."""
    wanted = [w for w, end in ends.items() if end > 0]
    done = committed_offsets(settings, group, wanted)
    behind = {w: done.get(w, -1) for w in wanted if done.get(w, -1) < ends[w]}
    return not behind or _nothing_left(settings, behind, ends)


def _nothing_left(
    settings: Settings, behind: dict[tuple[str, int], int], ends: dict[tuple[str, int], int]
) -> bool:
    """Whether no record a consumer is given lies between each partition's committed offset
    and its end offset (``False`` on any doubt: the caller asks again)."""
    consumer = make_consumer(settings, None, **{"enable.partition.eof": True})
    try:
        consumer.assign(
            [
                TopicPartition(t, p, o if o >= 0 else OFFSET_BEGINNING)
                for (t, p), o in behind.items()
            ]
        )
        pending = set(behind)
        deadline = time.monotonic() + 5.0
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            where = (str(msg.topic()), int(msg.partition() or 0))
            error = msg.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    return False
                pending.discard(where)  # read to the end: nothing the group has not seen
            elif (msg.offset() or 0) < ends.get(where, 0):
                return False  # a record the group has not committed yet
            else:
                pending.discard(where)
        return not pending
    finally:
        consumer.close()

"""The poll thread: the one thread that uses the consumer.

Each round it consumes, hands the records over as per-partition chunks, applies
backpressure and lets the commit strategy commit. Rebalance callbacks run inside
``consume()`` on this thread: before partitions go (revoked, or lost past the session
timeout) the strategy quiesces them (the batch in progress ends, what is finished commits)
and they are forgotten, so their buffered records are dropped as stale. Records the client
delivers again below what the assignment read already are dropped too (offsets only go
forward: :mod:`streams.offsets`).

Backpressure: when ``max_in_flight`` records are unfinished, every assigned partition is
paused (and stays paused across reassignment) but polling goes on, so the group never evicts
the worker for exceeding ``max.poll.interval.ms``; below half the limit they resume. Only
paused partitions are ever resumed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as KafkaTopicPartition

from streams import metrics
from streams.config import BatchSettings
from streams.exceptions import StreamError
from streams.offsets import OffsetTracker, TopicPartition
from streams.runner.commit import CommitStrategy
from streams.runner.handoff import Chunk, Handoff

log = logging.getLogger(__name__)

#: Longest wait in ``consume()``: how soon a commit request or a stop is noticed when idle.
POLL_TIMEOUT_S = 0.005


class Poller:
    def __init__(
        self,
        consumer: Consumer,
        topics: list[str],
        batch: BatchSettings,
        tracker: OffsetTracker,
        handoff: Handoff,
        labels: dict[str, str],
        on_fatal: Callable[[BaseException], None],
    ) -> None:
        self.consumer = consumer
        self.topics = topics
        self.batch = batch
        self._tracker = tracker
        self._handoff = handoff
        self._labels = labels
        self._on_fatal = on_fatal
        self._paused = False
        self._strategy: CommitStrategy | None = None
        #: Partitions being revoked inside the current callback: a rewind leaves them alone.
        self._leaving: set[TopicPartition] = set()

    def subscribe(self, strategy: CommitStrategy) -> None:
        self._strategy = strategy
        self.consumer.subscribe(
            self.topics,
            on_assign=self._on_assign,
            on_revoke=lambda c, parts: self._on_leave(parts, lost=False),
            on_lost=lambda c, parts: self._on_leave(parts, lost=True),
        )

    def poll_once(self) -> None:
        assert self._strategy is not None
        room = max(1, self.batch.max_in_flight - self._tracker.in_flight())
        messages = self.consumer.consume(num_messages=min(room, 10_000), timeout=POLL_TIMEOUT_S)
        if messages:
            self._accept(messages)
        self._apply_backpressure()
        self._strategy.on_poll(self.consumer)

    def _accept(self, messages: list[Message]) -> None:
        by_partition: dict[TopicPartition, list[Message]] = defaultdict(list)
        for msg in messages:
            err = msg.error()
            if err is None:
                by_partition[(msg.topic(), msg.partition())].append(msg)  # type: ignore[index]
            elif err.code() == KafkaError._PARTITION_EOF:
                continue
            elif err.fatal():
                self._on_fatal(StreamError(f"consumer error: {err}"))
            else:
                log.warning("consumer error (retried by the client): %s", err)
        chunks = []
        for tp, msgs in by_partition.items():
            msgs, offsets = self._forward_only(tp, msgs)
            if not msgs:
                continue
            epoch = self._tracker.add(tp, offsets)
            chunks.append(Chunk(tp, epoch, msgs))
            metrics.RECORDS_IN.labels(self._labels["stage"], tp[0]).inc(len(msgs))
        self._handoff.put(chunks)

    def _forward_only(
        self, tp: TopicPartition, msgs: list[Message]
    ) -> tuple[list[Message], list[int]]:
        """The records past what this assignment consumed of ``tp`` already, and their
        offsets. librdkafka may move a fetch position back by itself (see
        :mod:`streams.offsets`), also in the middle of one ``consume()`` result; processing
        those records again would repeat outputs that are committed, in exactly-once mode
        too, and re-apply old table changes. They are dropped and counted."""
        floor = self._tracker.next_offset(tp)
        kept: list[Message] = []
        offsets: list[int] = []
        first_dropped: int | None = None
        for msg in msgs:
            offset: int = msg.offset()  # type: ignore[assignment]
            if floor is not None and offset < floor:
                if first_dropped is None:
                    first_dropped = offset
                continue
            kept.append(msg)
            offsets.append(offset)
            floor = offset + 1
        if first_dropped is not None:
            dropped = len(msgs) - len(kept)
            metrics.REDELIVERED.labels(self._labels["stage"], tp[0]).inc(dropped)
            log.warning(
                "the client delivered %d records of %s[%d] again (from offset %d; this "
                "assignment had read up to %d): dropped, not processed twice",
                dropped,
                tp[0],
                tp[1],
                first_dropped,
                self._tracker.next_offset(tp),
            )
        return kept, offsets

    def _apply_backpressure(self) -> None:
        in_flight = self._tracker.in_flight()
        metrics.IN_FLIGHT.labels(**self._labels).set(in_flight)
        limit = self.batch.max_in_flight
        if not self._paused and in_flight >= limit:
            assignment = self.consumer.assignment()
            if assignment:
                self.consumer.pause(assignment)
                self._paused = True
                metrics.PAUSED.labels(**self._labels).set(1)
                log.info("paused %d partitions: %d records in flight", len(assignment), in_flight)
        elif self._paused and in_flight <= limit // 2:
            self.consumer.resume(self.consumer.assignment())
            self._paused = False
            metrics.PAUSED.labels(**self._labels).set(0)
            log.info("resumed partitions: %d records in flight", in_flight)

    def report_lag(self) -> None:
        """Lag from the watermarks of the last fetch responses (no broker round trip)."""
        lag = 0
        for tp in self.consumer.position(self.consumer.assignment()):
            _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if tp.offset >= 0 and high >= 0:
                lag += max(0, high - tp.offset)
        metrics.CONSUMER_LAG.labels(**self._labels).set(lag)

    def rewind(self, first: dict[TopicPartition, int]) -> None:
        """Read these partitions again from these offsets (their committed positions, after
        an aborted transaction); records of them already buffered are dropped."""
        keep = {tp: o for tp, o in first.items() if tp not in self._leaving}
        self._tracker.forget(list(keep))
        for (topic, partition), offset in keep.items():
            try:
                self.consumer.seek(KafkaTopicPartition(topic, partition, offset))
            except KafkaException as exc:
                # not rewound means skipped: stop instead, the restart reads from the commit
                raise StreamError(
                    f"could not rewind {topic}[{partition}] to {offset}: {exc.args[0]}"
                ) from None
        log.info("rewound %d partitions to their committed positions", len(keep))

    def _on_assign(self, consumer: Consumer, partitions: list[KafkaTopicPartition]) -> None:
        # New partitions follow the current backpressure state. They are never resumed
        # here: resuming a partition that is not paused can move its fetch position back
        # to an offset already consumed (librdkafka #4686); a leaving partition's pause
        # flag, which librdkafka keeps across assignments, is cleared in ``_on_leave``.
        if partitions and self._paused:
            consumer.pause(partitions)

    def _on_leave(self, partitions: list[KafkaTopicPartition], lost: bool) -> None:
        assert self._strategy is not None
        tps: list[TopicPartition] = [(p.topic, p.partition) for p in partitions]
        if lost:
            log.warning(
                "lost %d partitions (broker or group coordinator unreachable past the session "
                "timeout); their uncommitted records will be read again after rejoining",
                len(tps),
            )
        self._leaving = set(tps)
        self._tracker.leaving(tps)  # no batch after the one in progress takes them
        try:
            with self._strategy.quiesce(self.consumer, tps, lost):
                self._tracker.forget(tps)
        except BaseException as exc:  # raising into librdkafka would lose it
            self._on_fatal(exc)
        finally:
            self._leaving = set()
        if partitions and self._paused:
            self.consumer.resume(partitions)  # clear the pause flag for a later assignment

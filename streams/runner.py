"""Runs a :class:`~streams.stage.Stage` on confluent-kafka with at-least-once delivery.

Threads and hand-offs::

    poll thread ──(bounded buffer)──► processing thread ──produce──► broker
        ▲  commit(offsets whose outputs were all acked)  ◄──acks── delivery callbacks

- An input offset is committed only after every output it caused (or its DLQ envelope) was
  acknowledged by the broker.
- When ``batch.max_in_flight`` records are uncommitted the poll thread pauses its partitions
  but keeps polling, so the group never evicts it for exceeding ``max.poll.interval.ms``.
- Undecodable, invalid or rejected records go to the DLQ; :class:`~streams.dlq.DlqPolicy`
  stops the stage when the input is garbage.
- A permanent delivery error or a :class:`~streams.stage.FatalStageError` stops the stage
  without committing the affected offsets.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition

from schemas.dlq import ErrorKind
from streams import metrics
from streams.clients import make_consumer, make_producer
from streams.codec import MAX_RECORD_BYTES, decode, encode
from streams.config import Settings
from streams.dlq import DlqPolicy, Failure, make_envelope
from streams.exceptions import DecodeFailure, DeliveryFailed, StreamError
from streams.offsets import OffsetTracker, TopicPartition
from streams.stage import Emit, FatalStageError, Inbound, Output, Reject, Result, Stage
from streams.topics import logical_name, topic_name

log = logging.getLogger(__name__)

DEDUPE_HEADER = "caslie-id"
_COMMIT_INTERVAL_S = 0.5
_REVOKE_DRAIN_S = 30.0


class StageRunner:
    """Consume ``stage.input_topic``, process in batches, produce, commit.

    ``run`` blocks until ``stop`` is set or a fatal error occurs (re-raised).
    """

    def __init__(
        self,
        stage: Stage,
        settings: Settings,
        group_id: str | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.stage = stage
        self.settings = settings
        self.group_id = group_id or f"{settings.topic_prefix}{stage.name}"
        self.input_topic = topic_name(settings, stage.input_topic)
        self._on_batch = on_batch
        self._tracker = OffsetTracker()
        self._buffer: queue.Queue[Message] = queue.Queue()
        self._policy = DlqPolicy(settings.dlq)
        self._fatal: BaseException | None = None
        self._paused = False
        self._stop_processing = threading.Event()
        self._producer: Producer = make_producer(settings)
        self._consumer: Consumer = make_consumer(
            settings, self.group_id, **{"max.poll.interval.ms": 300_000}
        )
        self._labels = {"stage": stage.name}

    # -- poll thread -------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self._consumer.subscribe(
            [self.input_topic], on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        worker = threading.Thread(target=self._process_loop, name=f"{self.stage.name}-process")
        worker.start()
        last_commit = time.monotonic()
        try:
            while not stop.is_set() and self._fatal is None:
                max_batch = self.settings.batch.max_batch
                messages = self._consumer.consume(num_messages=max_batch, timeout=0.1)
                for msg in messages:
                    self._accept(msg)
                self._apply_backpressure()
                if time.monotonic() - last_commit >= _COMMIT_INTERVAL_S:
                    self._commit()
                    last_commit = time.monotonic()
        finally:
            self._stop_processing.set()
            worker.join()
            self._producer.flush(30)
            if self._fatal is None or not isinstance(self._fatal, DeliveryFailed):
                self._commit()
            self._consumer.close()
        if self._fatal is not None:
            raise self._fatal

    def _accept(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                return
            if err.fatal():
                self._fatal = StreamError(f"consumer error: {err}")
            else:
                log.warning("consumer error (retried by the client): %s", err)
            return
        topic, partition, offset = where(msg)
        self._tracker.add((topic, partition), offset)
        metrics.RECORDS_IN.labels(self.stage.name, topic).inc()
        self._buffer.put(msg)

    def _apply_backpressure(self) -> None:
        in_flight = self._tracker.in_flight()
        metrics.IN_FLIGHT.labels(**self._labels).set(in_flight)
        limit = self.settings.batch.max_in_flight
        assignment = self._consumer.assignment()
        if not self._paused and in_flight >= limit and assignment:
            self._consumer.pause(assignment)
            self._paused = True
            metrics.PAUSED.labels(**self._labels).set(1)
            log.info("paused %d partitions: %d records in flight", len(assignment), in_flight)
        elif self._paused and in_flight <= limit // 2:
            self._consumer.resume(assignment)
            self._paused = False
            metrics.PAUSED.labels(**self._labels).set(0)
            log.info("resumed partitions: %d records in flight", in_flight)

    def _commit(self) -> None:
        positions = self._tracker.committable()
        if not positions:
            return
        offsets = [KafkaTopicPartition(t, p, o) for (t, p), o in positions.items()]
        self._consumer.commit(offsets=offsets, asynchronous=False)
        metrics.COMMITS.labels(**self._labels).inc()

    def _on_revoke(self, consumer: Consumer, partitions: list[KafkaTopicPartition]) -> None:
        tps: list[TopicPartition] = [(p.topic, p.partition) for p in partitions]
        deadline = time.monotonic() + _REVOKE_DRAIN_S
        while self._tracker.in_flight_for(tps) and time.monotonic() < deadline:
            if self._fatal is not None:
                break
            time.sleep(0.05)
            self._commit()
        self._commit()
        self._tracker.forget(tps)
        if self._paused:
            self._paused = False  # re-evaluated against the new assignment

    def _on_lost(self, consumer: Consumer, partitions: list[KafkaTopicPartition]) -> None:
        self._tracker.forget([(p.topic, p.partition) for p in partitions])

    # -- processing thread -------------------------------------------------------------

    def _take_batch(self) -> list[Message]:
        batch: list[Message] = []
        try:
            batch.append(self._buffer.get(timeout=0.1))
        except queue.Empty:
            return batch
        deadline = time.monotonic() + self.settings.batch.max_wait_ms / 1000
        while len(batch) < self.settings.batch.max_batch:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._buffer.get(timeout=max(0.0, remaining)))
            except queue.Empty:
                break
        return batch

    def _process_loop(self) -> None:
        try:
            while not self._stop_processing.is_set() and self._fatal is None:
                self._producer.poll(0)
                batch = self._take_batch()
                if batch:
                    self._process_batch(batch)
        except BaseException as exc:
            log.error("stage %s stopped: %s", self.stage.name, exc)
            self._fatal = exc

    def _process_batch(self, batch: list[Message]) -> None:
        started = time.monotonic()
        inbound: list[Inbound] = []
        for msg in batch:
            topic, partition, offset = where(msg)
            raw = msg.value() or b""
            try:
                value = decode(msg.value(), logical_name(self.settings, topic))
            except DecodeFailure as exc:
                self._dead_letter(msg, exc.kind, exc.message)
                continue
            inbound.append(Inbound(topic, partition, offset, msg.key(), value, raw))
        if inbound:
            metrics.BATCH_SIZE.labels(**self._labels).observe(len(inbound))
            for item, result in zip(inbound, self._run_stage(inbound), strict=True):
                self._deliver(item, result)
        metrics.BATCH_SECONDS.labels(**self._labels).observe(time.monotonic() - started)
        if self._on_batch is not None:
            self._on_batch(len(batch))

    def _run_stage(self, inbound: list[Inbound]) -> Sequence[Result]:
        try:
            results = self.stage.process(inbound)
        except FatalStageError:
            raise
        except Exception as exc:
            if len(inbound) == 1:
                return [Reject(ErrorKind.PROCESSING, f"{type(exc).__name__}: {exc}")]
            log.warning("batch of %d failed (%s); isolating record by record", len(inbound), exc)
            return [r for item in inbound for r in self._run_stage([item])]
        if len(results) != len(inbound):
            raise FatalStageError(
                f"stage {self.stage.name} returned {len(results)} results for {len(inbound)} inputs"
            )
        return results

    def _deliver(self, item: Inbound, result: Result) -> None:
        tp = (item.topic, item.partition)
        if isinstance(result, Reject):
            self._dead_letter_inbound(item, result.kind, result.message)
            return
        assert isinstance(result, Emit)
        encoded = [(out, encode(out.value)) for out in result.outputs]
        too_big = [len(data) for _, data in encoded if len(data) > MAX_RECORD_BYTES]
        if too_big:
            msg = f"output of {max(too_big)} bytes exceeds the {MAX_RECORD_BYTES}-byte limit"
            self._dead_letter_inbound(item, ErrorKind.OVERSIZED, msg)
            return
        self._policy.record_valid()
        self._tracker.expect(tp, item.offset, len(encoded))
        for out, data in encoded:
            self._produce(out, data, tp, item.offset)

    def _produce(self, out: Output, data: bytes, tp: TopicPartition, offset: int) -> None:
        topic = topic_name(self.settings, out.logical_topic)

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                self._fatal = DeliveryFailed(f"delivery to {topic} failed: {err}")
                return
            metrics.RECORDS_OUT.labels(self.stage.name, topic).inc()
            self._tracker.ack(tp, offset)

        while True:
            try:
                self._producer.produce(
                    topic,
                    key=out.key.encode(),
                    value=data,
                    headers=[(DEDUPE_HEADER, out.dedupe_id.encode())],
                    on_delivery=delivered,
                )
                return
            except BufferError:
                self._producer.poll(0.1)  # local queue full: wait for deliveries

    def _dead_letter(self, msg: Message, kind: ErrorKind, message: str) -> None:
        self._send_dlq(Failure(*where(msg), msg.key(), msg.value(), kind, message))

    def _dead_letter_inbound(self, item: Inbound, kind: ErrorKind, message: str) -> None:
        self._send_dlq(
            Failure(item.topic, item.partition, item.offset, item.key, item.raw, kind, message)
        )

    def _send_dlq(self, failure: Failure) -> None:
        self._policy.check_invalid(self.stage.name)
        envelope = make_envelope(self.stage.name, failure, self.settings.dlq)
        tp = (failure.topic, failure.partition)
        self._tracker.expect(tp, failure.offset, 1)
        metrics.DLQ_RECORDS.labels(self.stage.name, failure.kind.value).inc()
        log.warning(
            "dead-lettered %s[%d]@%d: %s: %s",
            failure.topic,
            failure.partition,
            failure.offset,
            failure.kind,
            failure.message,
        )
        dedupe = f"dlq:{failure.topic}:{failure.partition}:{failure.offset}"
        out = Output(
            "dlq", failure.key.decode("utf-8", "replace") if failure.key else "", envelope, dedupe
        )
        self._produce(out, encode(envelope), tp, failure.offset)


def where(msg: Message) -> tuple[str, int, int]:
    """A consumed message's topic, partition and offset (never ``None`` for a record)."""
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset

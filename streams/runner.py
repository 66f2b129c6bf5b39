"""Runs a :class:`~streams.stage.Stage` on confluent-kafka, at-least-once or exactly-once.

Threads and hand-offs::

    poll thread ──(bounded buffer)──► processing thread ──produce──► broker
        ▲  commit(offsets whose outputs were all acked)  ◄──acks── delivery callbacks

- ``at_least_once``: an input offset is committed only after every output it caused (or its
  DLQ envelope) was acknowledged by the broker; a crash re-processes what was not committed,
  and the ``caslie-id`` header lets consumers drop the repeats.
- ``exactly_once``: each batch is one Kafka transaction holding its outputs, its DLQ
  envelopes and its input offsets (``send_offsets_to_transaction``); the poll thread never
  commits. A failed transaction is aborted and the stage stops (exit 70): its restart reads
  again from the last committed transaction. Readers must use ``read_committed`` (ours do).
- When ``batch.max_in_flight`` records are uncommitted the poll thread pauses its partitions
  but keeps polling, so the group never evicts it for exceeding ``max.poll.interval.ms``.
- Undecodable, invalid or rejected records go to the DLQ; :class:`~streams.dlq.DlqPolicy`
  stops the stage when the input is garbage.
- A permanent delivery error or a :class:`~streams.stage.FatalStageError` stops the stage
  without committing the affected offsets.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition

from schemas.dlq import ErrorKind
from streams import metrics
from streams.clients import make_consumer, make_producer
from streams.codec import MAX_RECORD_BYTES, decode, encode
from streams.config import Settings
from streams.dlq import DlqPolicy, Failure, make_envelope
from streams.exceptions import DecodeFailure, DeliveryFailed, StreamError
from streams.offsets import OffsetTracker, TopicPartition
from streams.stage import (
    Emit,
    FatalStageError,
    Inbound,
    Output,
    Reject,
    Result,
    Stage,
    WarmingStage,
)
from streams.topics import logical_name, topic_name

log = logging.getLogger(__name__)

DEDUPE_HEADER = "caslie-id"
_COMMIT_INTERVAL_S = 0.5
_REVOKE_DRAIN_S = 30.0
_TXN_TIMEOUT_S = 30.0


def transactional_id(settings: Settings, group_id: str) -> str:
    """Stable per replica when ``instance_id`` is set (a restart then fences its predecessor
    and aborts its open transaction at once); otherwise unique per process, and an open
    transaction of a killed process blocks ``read_committed`` readers of its output
    partitions until ``transaction.timeout.ms`` passes."""
    instance = settings.instance_id or f"{socket.gethostname()}-{os.getpid()}"
    return f"{group_id}.{instance}"


class StageRunner:
    """Consume ``stage.input_topics``, process in batches, produce, commit.

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
        self.input_topics = [topic_name(settings, t) for t in stage.input_topics]
        self._on_batch = on_batch
        self._tracker = OffsetTracker()
        #: Positions whose commit failed (broker away): retried at the next interval.
        self._pending_commit: dict[TopicPartition, int] = {}
        self._buffer: queue.Queue[Message] = queue.Queue()
        self._policy = DlqPolicy(settings.dlq)
        self._fatal: BaseException | None = None
        self._paused = False
        self._stop_processing = threading.Event()
        self.exactly_once = settings.delivery == "exactly_once"
        self._txn_lock = threading.Lock()  # held by the processing thread during a transaction
        #: The consumer's group generation, refreshed by the poll thread (exactly-once).
        self._group_metadata: object = None
        producer_extra: dict[str, object] = {}
        if self.exactly_once:
            producer_extra = {
                "transactional.id": transactional_id(settings, self.group_id),
                "transaction.timeout.ms": settings.transaction_timeout_ms,
            }
        self._producer: Producer = make_producer(settings, **producer_extra)
        self._consumer: Consumer = make_consumer(
            settings, self.group_id, **{"max.poll.interval.ms": 300_000}
        )
        self._labels = {"stage": stage.name}

    # -- poll thread -------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        if self.exactly_once:
            self._producer.init_transactions(_TXN_TIMEOUT_S)
        self._consumer.subscribe(
            self.input_topics,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        worker = threading.Thread(target=self._process_loop, name=f"{self.stage.name}-process")
        worker.start()
        last_commit = time.monotonic()
        try:
            while not stop.is_set() and self._fatal is None:
                max_batch = self.settings.batch.max_batch
                messages = self._consumer.consume(num_messages=max_batch, timeout=0.1)
                if self.exactly_once:
                    # read here: from the processing thread the call blocks behind consume()
                    self._group_metadata = self._consumer.consumer_group_metadata()
                for msg in messages:
                    self._accept(msg)
                self._apply_backpressure()
                if time.monotonic() - last_commit >= _COMMIT_INTERVAL_S:
                    self._commit()
                    self._report_lag()
                    last_commit = time.monotonic()
        finally:
            self._stop_processing.set()
            worker.join()
            self._producer.flush(30)
            if not self.exactly_once and not isinstance(self._fatal, DeliveryFailed):
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

    def _report_lag(self) -> None:
        """Lag from the watermarks of the last fetch responses (no broker round trip)."""
        lag = 0
        for tp in self._consumer.position(self._consumer.assignment()):
            _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if tp.offset >= 0 and high >= 0:
                lag += max(0, high - tp.offset)
        metrics.CONSUMER_LAG.labels(**self._labels).set(lag)

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
        if self.exactly_once:
            return  # offsets were committed inside each batch's transaction
        self._pending_commit.update(positions)
        if not self._pending_commit:
            return
        offsets = [KafkaTopicPartition(t, p, o) for (t, p), o in self._pending_commit.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            err: KafkaError = exc.args[0]
            if err.fatal():
                raise StreamError(f"offset commit failed for good: {err}") from None
            # broker or coordinator away (restart, pause, network): keep the positions and
            # try again at the next interval; librdkafka reconnects with backoff meanwhile
            log.warning("offset commit failed, will retry: %s", err)
            metrics.COMMIT_FAILURES.labels(**self._labels).inc()
            return
        self._pending_commit.clear()
        metrics.COMMITS.labels(**self._labels).inc()

    def _on_assign(self, consumer: Consumer, partitions: list[KafkaTopicPartition]) -> None:
        # librdkafka keeps a partition's pause flag across assignments: a partition paused
        # under backpressure, lost (session timeout) and assigned again would never be
        # fetched. New partitions follow the current backpressure state instead.
        if partitions and self._paused:
            consumer.pause(partitions)
        elif partitions:
            consumer.resume(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[KafkaTopicPartition]) -> None:
        tps: list[TopicPartition] = [(p.topic, p.partition) for p in partitions]
        if self.exactly_once:
            # Wait for the running transaction, then drop the partitions: their buffered,
            # uncommitted records are read again by the next owner.
            with self._txn_lock:
                self._tracker.forget(tps)
            consumer.resume(partitions)  # clear the pause flag for a later assignment
            return
        deadline = time.monotonic() + _REVOKE_DRAIN_S
        while self._tracker.in_flight_for(tps) and time.monotonic() < deadline:
            if self._fatal is not None:
                break
            time.sleep(0.05)
            self._commit()
        self._commit()
        self._tracker.forget(tps)
        for tp in tps:
            self._pending_commit.pop(tp, None)  # no longer ours to commit
        consumer.resume(partitions)  # clear the pause flag for a later assignment

    def _on_lost(self, consumer: Consumer, partitions: list[KafkaTopicPartition]) -> None:
        tps: list[TopicPartition] = [(p.topic, p.partition) for p in partitions]
        log.warning(
            "lost %d partitions (broker or group coordinator unreachable past the session "
            "timeout); their uncommitted records will be read again after rejoining",
            len(tps),
        )
        with self._txn_lock:
            self._tracker.forget(tps)
        for tp in tps:
            self._pending_commit.pop(tp, None)
        consumer.resume(partitions)  # clear the pause flag for a later assignment

    # -- processing thread -------------------------------------------------------------

    def _take_batch(self) -> list[Message]:
        batch: list[Message] = []
        try:
            batch.append(self._buffer.get(timeout=0.1))
        except queue.Empty:
            return batch
        first = time.monotonic()
        deadline = first + self.settings.batch.max_wait_ms / 1000
        while len(batch) < self.settings.batch.max_batch:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._buffer.get(timeout=max(0.0, remaining)))
            except queue.Empty:
                break
        metrics.BATCH_WAIT.labels(**self._labels).observe(time.monotonic() - first)
        return batch

    def _warmed_up(self) -> bool:
        """Wait for a :class:`WarmingStage`; ``False`` if told to stop meanwhile."""
        if not isinstance(self.stage, WarmingStage):
            return True
        while not self.stage.ready(0.2):
            if self._stop_processing.is_set() or self._fatal is not None:
                return False
        return True

    def _process_loop(self) -> None:
        try:
            if not self._warmed_up():
                return
            while not self._stop_processing.is_set() and self._fatal is None:
                self._producer.poll(0)
                batch = self._take_batch()
                if not self.exactly_once:  # (a transaction filters under its lock)
                    batch = [m for m in batch if self._tracker.tracks(*where(m))]
                if batch and self.exactly_once:
                    self._process_transaction(batch)
                elif batch:
                    self._process_batch(batch)
        except BaseException as exc:
            log.error("stage %s stopped: %s", self.stage.name, exc)
            self._fatal = exc

    def _process_transaction(self, batch: list[Message]) -> None:
        """One batch as one transaction: outputs, DLQ envelopes and input offsets together."""
        with self._txn_lock:
            batch = [m for m in batch if self._tracker.tracks(*where(m))]  # drop revoked
            if not batch:
                return
            positions: dict[TopicPartition, int] = {}
            for msg in batch:
                topic, partition, offset = where(msg)
                positions[(topic, partition)] = max(
                    positions.get((topic, partition), 0), offset + 1
                )
            offsets = [KafkaTopicPartition(t, p, o) for (t, p), o in positions.items()]
            self._producer.begin_transaction()
            try:
                self._process_batch(batch)
                if self._fatal is not None:
                    raise self._fatal
                self._producer.send_offsets_to_transaction(
                    offsets, self._group_metadata, _TXN_TIMEOUT_S
                )
                self._commit_transaction()
            except BaseException:
                self._abort_transaction()
                raise
            self._producer.poll(0)  # serve the delivery reports: the tracker drains
            metrics.COMMITS.labels(**self._labels).inc()

    def _commit_transaction(self) -> None:
        while True:
            try:
                self._producer.commit_transaction(_TXN_TIMEOUT_S)
                return
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if err.retriable():
                    log.warning("commit of the transaction failed, retrying: %s", err)
                    continue
                raise

    def _abort_transaction(self) -> None:
        try:
            self._producer.abort_transaction(_TXN_TIMEOUT_S)
            log.warning(
                "aborted the batch's transaction; the stage stops and its restart "
                "reads the batch again"
            )
        except KafkaException as exc:
            log.error("could not abort the transaction: %s", exc.args[0])

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
            if engine_failed(exc):
                raise FatalStageError(f"model engine failed: {type(exc).__name__}: {exc}") from exc
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
        generation = self._tracker.expect(tp, item.offset, len(encoded))
        for out, data in encoded:
            self._produce(out, data, tp, item.offset, generation)

    def _produce(
        self, out: Output, data: bytes, tp: TopicPartition, offset: int, generation: int | None
    ) -> None:
        topic = topic_name(self.settings, out.logical_topic)

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                self._fatal = DeliveryFailed(f"delivery to {topic} failed: {err}")
                return
            metrics.RECORDS_OUT.labels(self.stage.name, topic).inc()
            self._tracker.ack(tp, offset, generation)

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
        generation = self._tracker.expect(tp, failure.offset, 1)
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
        self._produce(out, encode(envelope), tp, failure.offset, generation)


_ENGINE_FAILURES = ("out of memory", "cuda error", "cublas", "cudnn", "device-side assert")


def engine_failed(exc: BaseException) -> bool:
    """The model engine itself is gone (memory, device): no record can be processed, so the
    worker must stop and be restarted rather than dead-letter everything that follows."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(sign in text for sign in _ENGINE_FAILURES)


def where(msg: Message) -> tuple[str, int, int]:
    """A consumed message's topic, partition and offset (never ``None`` for a record)."""
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset

"""One batch through a stage: decode, process with failure isolation, produce, dead-letter.

Runs on the processing thread. For each record the :class:`~streams.offsets.OffsetTracker`
learns how many outputs it produced, and each delivery report acknowledges one; a record
that cannot be decoded, is rejected by the stage or makes it raise goes to the DLQ instead
(one envelope, acknowledged the same way). Whether an exception is the record's fault or
the end of the stage is the stage's call (:func:`is_fatal`).

A dead-lettered record of a query on its way (:data:`~streams.topics.QUERY_TOPICS`) at a
pipeline stage also ends its query: a :class:`~schemas.records.PredictionFailure` keyed by
its request id goes to ``predictions`` with the envelope (``caslie-id``
``<request id>:failed``), in the same transaction in exactly-once mode. A
:class:`~streams.stage.DeadLetterWatcher` stage adds its own records to both.

A failed delivery stops an at-least-once stage (``DeliveryFailed``: the record is not
committed, its restart reads it again). In exactly-once mode it fails the transaction
instead: librdkafka then fails the commit with an abortable error, the batch is aborted and
read again, and the stage goes on (a fenced producer still stops it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from confluent_kafka import KafkaError, Message, Producer

from schemas.dlq import ErrorKind
from streams import metrics
from streams.codec import MAX_RECORD_BYTES, decode, encode, encode_value
from streams.config import Settings
from streams.dlq import DlqPolicy, Failure, failure_record, make_envelope, request_of
from streams.exceptions import DecodeFailure, DeliveryFailed
from streams.offsets import OffsetTracker, TopicPartition
from streams.runner.handoff import Chunk
from streams.stage import (
    DeadLetterWatcher,
    Emit,
    FatalStageError,
    Inbound,
    Output,
    Reject,
    Result,
    Stage,
)
from streams.topics import QUERY_TOPICS, SIDE_STAGES, logical_name, topic_name

log = logging.getLogger(__name__)

DEDUPE_HEADER = "caslie-id"
#: Delivery errors of the records of an aborted transaction: they are produced again.
_ABORTED = frozenset({KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT})
_FENCED = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED})
FENCED_HINT = (
    "another process took this stage's transactional id: two replicas share one instance_id, "
    "or an older copy of this one still runs; give every replica its own instance_id (the "
    "pod name of a StatefulSet)"
)


def is_fatal(stage: Stage, exc: BaseException) -> bool:
    """Whether ``exc`` ends the stage rather than failing one record: the stage's own
    ``is_fatal(exc)`` where it has one (a model engine that died), else only
    :class:`MemoryError`."""
    if isinstance(exc, FatalStageError | MemoryError):
        return True
    judge: Callable[[BaseException], bool] | None = getattr(stage, "is_fatal", None)
    return judge is not None and judge(exc)


class Dispatcher:
    def __init__(
        self,
        stage: Stage,
        settings: Settings,
        producer: Producer,
        tracker: OffsetTracker,
        on_fatal: Callable[[BaseException], None],
    ) -> None:
        self.stage = stage
        self.settings = settings
        self._producer = producer
        self._tracker = tracker
        self._on_fatal = on_fatal
        #: Exactly-once: a failed delivery fails its transaction, not the stage.
        self._transactional = settings.delivery == "exactly_once"
        self._policy = DlqPolicy(settings.dlq)
        self._policy_before = self._policy.snapshot()
        self._logical = {t: logical_name(settings, t) for t in _topics(settings, stage)}
        self._physical: dict[str, str] = {}
        #: A side stage (the accumulator) reads records of queries answered already.
        self._ends_queries = stage.name not in {s.name for s in SIDE_STAGES}

    def undo(self) -> None:
        """The last batch was undone (its transaction aborted): its invalid records will be
        read and counted again, so they must not count twice toward the DLQ limits."""
        self._policy.restore(self._policy_before)

    def process(self, chunks: list[Chunk]) -> None:
        self._policy_before = self._policy.snapshot()
        started = time.monotonic()
        inbound: list[tuple[Inbound, int]] = []
        for chunk in chunks:
            topic, partition = chunk.tp
            logical = self._logical[topic]
            for msg in chunk.messages:
                raw = msg.value()
                offset = msg.offset()
                assert offset is not None
                try:
                    value = decode(raw, logical)
                except DecodeFailure as exc:
                    failure = Failure(
                        topic, partition, offset, msg.key(), raw, exc.kind, exc.message
                    )
                    self._send_dlq(failure, chunk.epoch)
                    continue
                item = Inbound(topic, partition, offset, msg.key(), value, raw or b"")
                inbound.append((item, chunk.epoch))
        if inbound:
            metrics.BATCH_SIZE.labels(self.stage.name).observe(len(inbound))
            results = self._run_stage([item for item, _ in inbound])
            for (item, epoch), result in zip(inbound, results, strict=True):
                self._deliver(item, epoch, result)
        metrics.BATCH_SECONDS.labels(self.stage.name).observe(time.monotonic() - started)

    def _run_stage(self, inbound: list[Inbound]) -> Sequence[Result]:
        try:
            results = self.stage.process(inbound)
        except Exception as exc:
            if is_fatal(self.stage, exc):
                raise FatalStageError(f"{type(exc).__name__}: {exc}") from exc
            if len(inbound) == 1:
                return [Reject(ErrorKind.PROCESSING, f"{type(exc).__name__}: {exc}")]
            log.warning("batch of %d failed (%s); isolating record by record", len(inbound), exc)
            return [r for item in inbound for r in self._run_stage([item])]
        if len(results) != len(inbound):
            raise FatalStageError(
                f"stage {self.stage.name} returned {len(results)} results for {len(inbound)} inputs"
            )
        return results

    def _deliver(self, item: Inbound, epoch: int, result: Result) -> None:
        if isinstance(result, Reject):
            self._reject(item, epoch, result.kind, result.message)
            return
        assert isinstance(result, Emit)
        encoded = [(out, encode_value(out.value)) for out in result.outputs]
        too_big = [len(data) for _, data in encoded if data and len(data) > MAX_RECORD_BYTES]
        if too_big:
            message = f"output of {max(too_big)} bytes exceeds the {MAX_RECORD_BYTES}-byte limit"
            self._reject(item, epoch, ErrorKind.OVERSIZED, message)
            return
        self._policy.record_valid()
        tp = (item.topic, item.partition)
        if not self._tracker.expect(tp, item.offset, len(encoded), epoch):
            return  # revoked or rewound while processing: its next reader produces it
        for out, data in encoded:
            self._produce(out, data, tp, item.offset, epoch)

    def _produce(
        self, out: Output, data: bytes | None, tp: TopicPartition, offset: int, epoch: int
    ) -> None:
        topic = self._physical.get(out.logical_topic)
        if topic is None:
            topic = self._physical[out.logical_topic] = topic_name(self.settings, out.logical_topic)
        tracker, stage_name = self._tracker, self.stage.name

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                if err.code() in _FENCED:
                    self._on_fatal(
                        DeliveryFailed(f"delivery to {topic} failed: {err}; {FENCED_HINT}")
                    )
                elif err.code() in _ABORTED:
                    pass
                elif self._transactional:
                    # the transaction cannot commit now: its commit fails abortable, it is
                    # aborted and its batch read again (a broker away longer than the
                    # message timeout, say); nothing of it becomes visible
                    log.warning("delivery to %s failed inside a transaction: %s", topic, err)
                else:
                    self._on_fatal(DeliveryFailed(f"delivery to {topic} failed: {err}"))
                return
            metrics.RECORDS_OUT.labels(stage_name, topic).inc()
            tracker.ack(tp, offset, epoch)

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

    def _reject(self, item: Inbound, epoch: int, kind: ErrorKind, message: str) -> None:
        failure = Failure(
            item.topic, item.partition, item.offset, item.key, item.raw, kind, message
        )
        self._send_dlq(failure, epoch)

    def _send_dlq(self, failure: Failure, epoch: int) -> None:
        self._policy.check_invalid(self.stage.name, failure.kind)
        tp = (failure.topic, failure.partition)
        logical = self._logical[failure.topic]
        request_id, task = request_of(logical, failure.value)
        if logical not in QUERY_TOPICS:
            request_id = task = None
        envelope = make_envelope(self.stage.name, failure, self.settings.dlq, request_id)
        key = failure.key.decode("utf-8", "replace") if failure.key else ""
        dedupe = f"dlq:{failure.topic}:{failure.partition}:{failure.offset}"
        outputs: list[tuple[Output, bytes | None]] = [
            (Output("dlq", key, envelope, dedupe), encode(envelope))
        ]
        ended = None
        if request_id is not None and self._ends_queries:
            ended = failure_record(self.stage.name, failure, request_id, task)
        if ended is not None:
            rid = ended.request_id
            out = Output("predictions", rid, ended, f"{rid}:failed")
            outputs.append((out, encode(ended)))
        if isinstance(self.stage, DeadLetterWatcher):
            extra = self.stage.dead_lettered(logical, failure)
            outputs += [(out, encode_value(out.value)) for out in extra]
        if not self._tracker.expect(tp, failure.offset, len(outputs), epoch):
            return  # revoked or rewound meanwhile
        metrics.DLQ_RECORDS.labels(self.stage.name, failure.kind.value).inc()
        log.warning(
            "dead-lettered %s[%d]@%d%s: %s: %s",
            failure.topic,
            failure.partition,
            failure.offset,
            f" (request {request_id})" if request_id else "",
            failure.kind,
            failure.message,
        )
        for out, data in outputs:
            self._produce(out, data, tp, failure.offset, epoch)


def _topics(settings: Settings, stage: Stage) -> list[str]:
    return [topic_name(settings, t) for t in stage.input_topics]


def where(msg: Message) -> tuple[str, int, int]:
    """A consumed message's topic, partition and offset (never ``None`` for a record)."""
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset

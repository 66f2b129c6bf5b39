"""How a batch's input offsets become committed: at-least-once or in a Kafka transaction.

A strategy is chosen once per runner. Its methods run on two threads:

- processing thread: :meth:`CommitStrategy.process` wraps one batch's work (produce outputs
  and DLQ envelopes). It holds the strategy's *gate* for as long as the batch runs, so a
  rebalance never forgets partitions under a batch that still works on them.
- poll thread (the only thread that touches the consumer): :meth:`on_poll` between two
  ``consume()`` calls; :meth:`quiesce` inside the rebalance callbacks: it returns holding the
  gate, once no batch works on the partitions, after committing what is finished of them;
  :meth:`close` at shutdown.

``AtLeastOnce`` commits, every 0.5 s, the positions whose outputs were all acknowledged.

``Transactional`` makes every batch one transaction holding its outputs, its DLQ envelopes
and its input offsets. The processing thread begins it and produces; the poll thread sends
the offsets and commits, because only there is the consumer's group metadata current (it
changes inside ``consume()``, and from another thread ``consumer_group_metadata()`` blocks
behind ``consume()``). A commit that fails with an abortable error (a rebalance moved the
group generation, say) aborts the transaction and rewinds the batch's partitions to their
committed positions: the stage goes on and the batch is processed again. A fenced producer
(another process took this transactional id) stops the stage with a reason.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition

from streams import metrics
from streams.exceptions import StreamError
from streams.offsets import OffsetTracker, TopicPartition
from streams.runner.dispatch import FENCED_HINT, where
from streams.runner.handoff import Chunk

log = logging.getLogger(__name__)

COMMIT_INTERVAL_S = 0.5
TXN_TIMEOUT_S = 30.0
#: Longest a rebalance waits for the outputs of revoked partitions to be acknowledged.
REVOKE_DRAIN_S = 30.0

#: Seeks the given partitions back to these offsets (the poll thread's, see ``polling``).
Rewind = Callable[[dict[TopicPartition, int]], None]


class CommitStrategy(Protocol):
    def start(self) -> None:
        """Before the first poll (exactly-once: ``init_transactions``)."""
        ...

    def process(self, chunks: list[Chunk], work: Callable[[list[Chunk]], None]) -> bool:
        """Processing thread: run ``work`` on the chunks still current; ``False`` if what it
        did was undone (an aborted transaction: the records will be read again)."""
        ...

    def on_poll(self, consumer: Consumer) -> None:
        """Poll thread, between two ``consume()`` calls: commit what is due."""
        ...

    def quiesce(
        self, consumer: Consumer, tps: list[TopicPartition], lost: bool
    ) -> contextlib.AbstractContextManager[None]:
        """Poll thread, in a rebalance callback: returns holding the gate, once no batch
        works on ``tps`` and what is finished of them is committed (not when ``lost``)."""
        ...

    def close(self, consumer: Consumer, commit: bool) -> None:
        """Poll thread, after the processing thread ended: commit (unless ``commit`` is
        false: a delivery failed) or abort what is left; a revocation then waits for
        nothing."""
        ...


class _Gated:
    """What both strategies hold: the producer, the tracker, the gate, and a batch's records
    re-checked against their epochs under it."""

    def __init__(
        self,
        producer: Producer,
        tracker: OffsetTracker,
        labels: dict[str, str],
        failing: Callable[[], bool],
    ) -> None:
        self._producer = producer
        self._tracker = tracker
        self._labels = labels
        self._failing = failing
        self._gate = threading.Lock()

    def _current(self, chunks: list[Chunk]) -> list[Chunk]:
        return [c for c in chunks if self._tracker.current(c.tp, c.epoch)]


class AtLeastOnce(_Gated):
    def __init__(
        self,
        producer: Producer,
        tracker: OffsetTracker,
        labels: dict[str, str],
        failing: Callable[[], bool],
    ) -> None:
        super().__init__(producer, tracker, labels, failing)
        #: Positions whose commit failed (broker away): retried at the next interval.
        self._pending: dict[TopicPartition, int] = {}
        self._last_commit = time.monotonic()
        #: Set at shutdown: nothing more will be processed, so a revocation waits for nothing.
        self._closing = False

    def start(self) -> None:
        pass

    def process(self, chunks: list[Chunk], work: Callable[[list[Chunk]], None]) -> bool:
        with self._gate:
            chunks = self._current(chunks)
            if chunks:
                work(chunks)
        return True

    def on_poll(self, consumer: Consumer) -> None:
        self._producer.poll(0)  # delivery reports: acknowledged records become committable
        if time.monotonic() - self._last_commit >= COMMIT_INTERVAL_S:
            self.commit(consumer)
            self._last_commit = time.monotonic()

    def commit(self, consumer: Consumer) -> None:
        self._pending.update(self._tracker.committable())
        if not self._pending:
            return
        offsets = [KafkaTopicPartition(t, p, o) for (t, p), o in self._pending.items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            err: KafkaError = exc.args[0]
            if err.fatal():
                raise StreamError(f"offset commit failed for good: {err}") from None
            # broker or coordinator away (restart, pause, network), or a rebalance moved the
            # generation: keep the positions and try again at the next interval
            log.warning("offset commit failed, will retry: %s", err)
            metrics.COMMIT_FAILURES.labels(**self._labels).inc()
            return
        self._pending.clear()
        metrics.COMMITS.labels(**self._labels).inc()

    @contextlib.contextmanager
    def quiesce(self, consumer: Consumer, tps: list[TopicPartition], lost: bool) -> Iterator[None]:
        with self._gate:  # the batch in progress, if any, has produced everything
            if not lost:
                deadline = time.monotonic() + REVOKE_DRAIN_S
                while (
                    not self._closing
                    and not self._failing()
                    and self._tracker.awaiting_acks(tps)
                    and time.monotonic() < deadline
                ):
                    self._producer.poll(0.01)  # serve the delivery reports ourselves
                self.commit(consumer)
            for tp in tps:
                self._pending.pop(tp, None)  # no longer ours to commit
            yield

    def close(self, consumer: Consumer, commit: bool) -> None:
        self._closing = True
        if commit:
            self.commit(consumer)


@dataclass
class _CommitRequest:
    #: Offsets to send with the transaction (next position per partition).
    offsets: list[KafkaTopicPartition]
    #: Where each partition goes back to if the transaction is aborted.
    first: dict[TopicPartition, int]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    committed: bool = False


class Transactional(_Gated):
    def __init__(
        self,
        producer: Producer,
        tracker: OffsetTracker,
        labels: dict[str, str],
        failing: Callable[[], bool],
        rewind: Rewind,
        transactional_id: str,
        transaction_timeout_s: float,
    ) -> None:
        super().__init__(producer, tracker, labels, failing)
        self._rewind = rewind
        self._transactional_id = transactional_id
        #: How long a commit or an abort is retried: past the transaction timeout, which
        #: bounds librdkafka's message timeout, every record of the transaction has been
        #: delivered or has failed, so the call has an outcome (committed, or abortable).
        #: Giving up sooner left the call in progress: the abort then conflicted with it
        #: (``_CONFLICT``) and the stage stopped, after a broker pause in CI.
        self._settle_s = transaction_timeout_s + TXN_TIMEOUT_S
        self._request: _CommitRequest | None = None
        self._requested = threading.Condition()
        #: A transaction was begun and is neither committed nor aborted yet.
        self._open = False

    def start(self) -> None:
        self._producer.init_transactions(TXN_TIMEOUT_S)

    def process(self, chunks: list[Chunk], work: Callable[[list[Chunk]], None]) -> bool:
        with self._gate:
            chunks = self._current(chunks)
            if not chunks:
                return True
            first: dict[TopicPartition, int] = {}
            last: dict[TopicPartition, int] = {}
            for chunk in chunks:
                offsets = [where(m)[2] for m in chunk.messages]
                first[chunk.tp] = min(first.get(chunk.tp, offsets[0]), *offsets)
                last[chunk.tp] = max(last.get(chunk.tp, offsets[0]), *offsets)
            self._producer.begin_transaction()
            self._open = True
            try:
                work(chunks)
            except BaseException:
                self._abort("the stage failed")
                raise
            request = _CommitRequest(
                [KafkaTopicPartition(t, p, o + 1) for (t, p), o in last.items()], first
            )
            with self._requested:
                self._request = request
                self._requested.notify_all()
            while not request.done.wait(0.05):  # the poll thread commits it
                if self._failing():
                    return False  # the poll thread stops: close() aborts it
            if request.error is not None:
                raise request.error
            return request.committed

    def on_poll(self, consumer: Consumer) -> None:
        with self._requested:
            request, self._request = self._request, None
        if request is not None:
            self._commit(consumer, request)

    def _commit(self, consumer: Consumer, request: _CommitRequest) -> None:
        try:
            self._retrying(
                "sending the offsets",
                lambda: self._producer.send_offsets_to_transaction(
                    request.offsets, consumer.consumer_group_metadata(), TXN_TIMEOUT_S
                ),
            )
            self._retrying(
                "committing the transaction",
                lambda: self._producer.commit_transaction(TXN_TIMEOUT_S),
                self._settle_s,
            )
            self._open = False
            request.committed = True
            self._tracker.committable()  # drop the finished records: they are committed
            metrics.COMMITS.labels(**self._labels).inc()
        except KafkaException as exc:
            err: KafkaError = exc.args[0]
            if err.fatal():
                request.error = self._fatal_error(err)
            else:
                if not err.txn_requires_abort():
                    log.warning("transaction failed, aborting it: %s", err)
                else:
                    log.warning("transaction aborted, its batch will be processed again: %s", err)
                metrics.COMMIT_FAILURES.labels(**self._labels).inc()
                try:
                    self._abort(str(err))
                    self._rewind(request.first)
                except BaseException as abort_error:
                    request.error = abort_error
        except BaseException as exc:
            request.error = exc
        finally:
            request.done.set()

    def _retrying(
        self, what: str, call: Callable[[], None], budget_s: float = TXN_TIMEOUT_S
    ) -> None:
        """``call`` again after retriable errors, for at most ``budget_s`` in all."""
        deadline = time.monotonic() + budget_s
        delay = 0.05
        while True:
            try:
                call()
                return
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if not err.retriable() or time.monotonic() + delay > deadline:
                    raise
                log.warning("%s failed, retrying: %s", what, err)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _fatal_error(self, err: KafkaError) -> StreamError:
        if err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED):
            return StreamError(
                f"producer fenced (transactional id {self._transactional_id!r}): {FENCED_HINT}"
            )
        return StreamError(f"transaction failed for good: {err}")

    def _abort(self, why: str) -> None:
        """Abort the open transaction; a failed abort stops the stage (raises)."""
        try:
            self._retrying(
                "aborting the transaction",
                lambda: self._producer.abort_transaction(TXN_TIMEOUT_S),
                self._settle_s,
            )
        except KafkaException as exc:
            err: KafkaError = exc.args[0]
            raise self._fatal_error(err) from None
        finally:
            self._open = False
        log.info("aborted the transaction (%s)", why)

    @contextlib.contextmanager
    def quiesce(self, consumer: Consumer, tps: list[TopicPartition], lost: bool) -> Iterator[None]:
        # The batch in progress must end, committed or aborted, before its partitions go:
        # serve its commit (the metadata is current in here) until the gate is free.
        while not self._gate.acquire(timeout=0.01):
            self.on_poll(consumer)
            if self._failing():
                self._gate.acquire()
                break
        try:
            yield
        finally:
            self._gate.release()

    def close(self, consumer: Consumer, commit: bool) -> None:
        # a transaction with a failed delivery cannot commit: the broker refuses it
        self.on_poll(consumer)
        if self._open:  # its batch never reached the commit: readers must not wait for it
            with contextlib.suppress(StreamError):
                self._abort("the stage stops")

"""An in-memory Kafka broker for unit tests of the stage runner (not a product).

It implements the part of confluent-kafka's ``Consumer`` and ``Producer`` API that
:mod:`streams.runner` calls, with the behaviour the runner depends on:

- one consumer group member per group; subscribing assigns every partition of the topics at
  the first ``consume()``, from the group's committed offset (else the beginning);
- rebalances are test hooks (:meth:`MemoryBroker.revoke`, :meth:`~MemoryBroker.assign`,
  :meth:`~MemoryBroker.lose`): they are queued and their callbacks run inside the next
  ``consume()``, on the polling thread, as librdkafka does; each one moves the group
  generation on. A pause flag survives reassignment, as in librdkafka. ``close()`` revokes.
- ``read_committed`` consumers (the default) stop at the first record of an open
  transaction and never see an aborted one; ``read_uncommitted`` ones see everything.
- transactions: ``send_offsets_to_transaction`` with stale group metadata, or a commit made
  to fail by :meth:`MemoryBroker.fail_next_commit`, raise; committed offsets of a transaction
  apply only when it commits. ``init_transactions`` (or :meth:`MemoryBroker.fence`) fences an
  older producer with the same ``transactional.id``: its next transactional call raises a
  fatal ``_FENCED`` error (a simplification: its produce calls still succeed).
- produced records are in the log at once; their delivery reports are served by ``poll``,
  ``flush`` and ``commit_transaction``, or fail with ``_PURGE_QUEUE`` when a transaction aborts.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_INVALID, KafkaError, KafkaException, TopicPartition

TP = tuple[str, int]
Report = tuple[Callable[[KafkaError | None, Any], None], KafkaError | None, "MemoryMessage"]


@dataclass
class _Txn:
    state: str = "open"  # open | committed | aborted
    offsets: dict[tuple[str, TP], int] = field(default_factory=dict)
    #: A delivery of the transaction failed: its commit fails with an abortable error.
    failed: KafkaError | None = None


@dataclass
class _Record:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None
    txn: _Txn | None  # None: not transactional


class MemoryMessage:
    def __init__(self, topic: str, partition: int, offset: int, record: _Record) -> None:
        self._topic, self._partition, self._offset, self._record = topic, partition, offset, record

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._record.key

    def value(self) -> bytes | None:
        return self._record.value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._record.headers

    def error(self) -> None:
        return None


@dataclass(frozen=True)
class GroupMetadata:
    group: str
    generation: int


class MemoryBroker:
    def __init__(self, partitions: int = 1) -> None:
        self.partitions = partitions
        self.logs: dict[TP, list[_Record]] = {}
        self.offsets: dict[tuple[str, TP], int] = {}  # (group, tp) -> committed position
        self.generations: dict[str, int] = {}
        self.txn_epochs: dict[str, int] = {}
        self.rebalances: list[tuple[str, list[TP]]] = []
        self.commit_failure: KafkaError | None = None
        self.delivery_failure: KafkaError | None = None
        self.aborted = 0
        self.lock = threading.Condition()

    # -- test hooks ----------------------------------------------------------------------

    def append(self, topic: str, value: bytes, key: bytes | None = None, partition: int = 0) -> int:
        """A committed, non-transactional record; returns its offset."""
        with self.lock:
            log = self._log(topic, partition)
            log.append(_Record(key, value, None, None))
            self.lock.notify_all()
            return len(log) - 1

    def values(self, topic: str, read_committed: bool = True) -> list[bytes]:
        """Values of every partition of ``topic`` a reader with that isolation would see."""
        with self.lock:
            return [
                r.value or b""
                for (t, _), log in sorted(self.logs.items())
                if t == topic
                for r in log[: self._end(log, read_committed)]
                if _visible(r, read_committed)
            ]

    def keyed(
        self, topic: str, read_committed: bool = True
    ) -> list[tuple[bytes | None, bytes, str]]:
        """(key, value, ``caslie-id`` header) of what :meth:`values` shows."""
        with self.lock:
            return [
                (r.key, r.value or b"", dict(r.headers or []).get("caslie-id", b"").decode())
                for (t, _), log in sorted(self.logs.items())
                if t == topic
                for r in log[: self._end(log, read_committed)]
                if _visible(r, read_committed)
            ]

    def committed_offset(self, group: str, topic: str, partition: int = 0) -> int | None:
        with self.lock:
            return self.offsets.get((group, (topic, partition)))

    def revoke(self, parts: list[TP]) -> None:
        """Revoke at the next ``consume()`` (``on_revoke``)."""
        self._rebalance("revoke", parts)

    def assign(self, parts: list[TP]) -> None:
        """Assign at the next ``consume()`` (``on_assign``), from the committed offsets."""
        self._rebalance("assign", parts)

    def lose(self, parts: list[TP]) -> None:
        """Lose at the next ``consume()`` (``on_lost``: session timed out)."""
        self._rebalance("lost", parts)

    def pending_rebalances(self) -> int:
        """Rebalances queued whose callbacks have not started yet."""
        with self.lock:
            return len(self.rebalances)

    def fail_next_commit(self, error: KafkaError) -> None:
        """The next ``Consumer.commit`` or ``Producer.commit_transaction`` raises ``error``."""
        with self.lock:
            self.commit_failure = error

    def fail_next_delivery(self, error: KafkaError) -> None:
        """The next produced record's delivery report carries ``error`` (it is not written);
        inside a transaction the commit then fails with an abortable error, as librdkafka's."""
        with self.lock:
            self.delivery_failure = error

    def fence(self, transactional_id: str) -> None:
        """Another producer initialised ``transactional_id``: its current owner is fenced."""
        with self.lock:
            self.txn_epochs[transactional_id] = self.txn_epochs.get(transactional_id, 0) + 1

    # -- internals -----------------------------------------------------------------------

    def _rebalance(self, kind: str, parts: list[TP]) -> None:
        with self.lock:
            self.rebalances.append((kind, list(parts)))
            self.lock.notify_all()

    def _log(self, topic: str, partition: int) -> list[_Record]:
        for p in range(self.partitions):
            self.logs.setdefault((topic, p), [])
        return self.logs.setdefault((topic, partition), [])

    @staticmethod
    def _end(log: list[_Record], read_committed: bool) -> int:
        """The last stable offset for ``read_committed``, else the high watermark."""
        if read_committed:
            for offset, record in enumerate(log):
                if record.txn is not None and record.txn.state == "open":
                    return offset
        return len(log)


def _visible(record: _Record, read_committed: bool) -> bool:
    return not read_committed or record.txn is None or record.txn.state == "committed"


class MemoryConsumer:
    def __init__(self, broker: MemoryBroker, config: dict[str, Any]) -> None:
        self._b = broker
        self.config = config
        self.group: str = config["group.id"]
        self._read_committed = config.get("isolation.level", "read_committed") == "read_committed"
        self._callbacks: dict[str, Callable[..., None]] = {}
        self._positions: dict[TP, int] = {}  # the assignment and its fetch positions
        self._paused: set[TP] = set()
        #: Every pause() and resume() call, for backpressure tests.
        self.pause_calls: list[list[TP]] = []
        self.resume_calls: list[list[TP]] = []
        #: Partitions resumed while they were not paused (librdkafka #4686's trigger).
        self.resumed_unpaused: list[TP] = []
        #: Rebalances whose callbacks have returned.
        self.rebalances_done = 0
        self.closed = False

    def subscribe(self, topics: list[str], **callbacks: Callable[..., None]) -> None:
        self._callbacks = callbacks
        with self._b.lock:
            parts = [(t, p) for t in topics for p in range(self._b.partitions)]
            for t, p in parts:
                self._b._log(t, p)
            self._b.rebalances.append(("assign", parts))

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[MemoryMessage]:
        self._run_rebalances()
        with self._b.lock:
            messages = self._fetch(num_messages)
            if not messages and not self._b.rebalances:
                self._b.lock.wait(max(timeout, 0))
                messages = self._fetch(num_messages)
        return messages

    def _fetch(self, limit: int) -> list[MemoryMessage]:
        out: list[MemoryMessage] = []
        for tp, position in self._positions.items():
            if tp in self._paused:
                continue
            log = self._b.logs[tp]
            end = self._b._end(log, self._read_committed)
            while position < end and len(out) < limit:
                if _visible(log[position], self._read_committed):
                    out.append(MemoryMessage(*tp, position, log[position]))
                position += 1
            self._positions[tp] = position
        return out

    def _run_rebalances(self) -> None:
        with self._b.lock:
            events, self._b.rebalances = self._b.rebalances, []
        gens = self._b.generations
        for kind, parts in events:
            if kind == "assign":
                with self._b.lock:
                    gens[self.group] = gens.get(self.group, 0) + 1
                    for tp in parts:
                        self._positions[tp] = self._b.offsets.get((self.group, tp), 0)
            tps = [TopicPartition(*tp) for tp in parts]
            self._callbacks["on_" + kind](self, tps)  # outside the lock, as librdkafka
            if kind != "assign":
                with self._b.lock:
                    gens[self.group] = gens.get(self.group, 0) + 1
                    for tp in parts:
                        self._positions.pop(tp, None)
            self.rebalances_done += 1

    def assignment(self) -> list[TopicPartition]:
        with self._b.lock:
            return [TopicPartition(*tp) for tp in self._positions]

    def pause(self, partitions: list[TopicPartition]) -> None:
        with self._b.lock:
            self.pause_calls.append([(p.topic, p.partition) for p in partitions])
            self._paused.update(self.pause_calls[-1])

    def resume(self, partitions: list[TopicPartition]) -> None:
        with self._b.lock:
            self.resume_calls.append([(p.topic, p.partition) for p in partitions])
            self.resumed_unpaused += [tp for tp in self.resume_calls[-1] if tp not in self._paused]
            self._paused.difference_update(self.resume_calls[-1])

    def seek(self, partition: TopicPartition) -> None:
        with self._b.lock:
            tp = (partition.topic, partition.partition)
            if tp not in self._positions:
                raise KafkaException(KafkaError(KafkaError._STATE, f"{tp} is not assigned"))
            self._positions[tp] = partition.offset

    def fetch_from(self, tp: TP, offset: int) -> None:
        """Move a fetch position without the application asking: what librdkafka does when
        a resume races a partition's offset lookup (librdkafka #4686)."""
        with self._b.lock:
            self._positions[tp] = offset
            self._b.lock.notify_all()

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        with self._b.lock:
            return [
                TopicPartition(
                    p.topic, p.partition, self._positions.get((p.topic, p.partition), -1)
                )
                for p in partitions
            ]

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float | None = None, cached: bool = False
    ) -> tuple[int, int]:
        with self._b.lock:
            return 0, len(self._b.logs.get((partition.topic, partition.partition), []))

    def commit(
        self, offsets: list[TopicPartition], asynchronous: bool = True
    ) -> list[TopicPartition]:
        assert not asynchronous, "the runner commits synchronously"
        with self._b.lock:
            failure, self._b.commit_failure = self._b.commit_failure, None
            if failure is not None:
                raise KafkaException(failure)
            for p in offsets:
                self._b.offsets[(self.group, (p.topic, p.partition))] = p.offset
        return offsets

    def committed(
        self, partitions: list[TopicPartition], timeout: float | None = None
    ) -> list[TopicPartition]:
        with self._b.lock:
            return [
                TopicPartition(
                    p.topic,
                    p.partition,
                    self._b.offsets.get((self.group, (p.topic, p.partition)), OFFSET_INVALID),
                )
                for p in partitions
            ]

    def consumer_group_metadata(self) -> GroupMetadata:
        with self._b.lock:
            return GroupMetadata(self.group, self._b.generations.get(self.group, 0))

    def close(self) -> None:
        if self._positions and "on_revoke" in self._callbacks:
            self._callbacks["on_revoke"](self, self.assignment())  # librdkafka revokes too
        self._positions.clear()
        self.closed = True


class MemoryProducer:
    def __init__(self, broker: MemoryBroker, config: dict[str, Any]) -> None:
        self._b = broker
        self.config = config
        self._tid: str | None = config.get("transactional.id")
        self._epoch: int | None = None
        self._txn: _Txn | None = None
        self._reports: list[Report] = []

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        on_delivery: Callable[[KafkaError | None, Any], None] | None = None,
    ) -> None:
        with self._b.lock:
            if self._tid is not None and self._txn is None:
                raise KafkaException(KafkaError(KafkaError._STATE, "no open transaction"))
            partition = zlib.crc32(key) % self._b.partitions if key else 0
            log = self._b._log(topic, partition)
            failure, self._b.delivery_failure = self._b.delivery_failure, None
            if failure is not None:
                if self._txn is not None:
                    self._txn.failed = failure
                if on_delivery is not None:
                    lost = MemoryMessage(topic, partition, -1, _Record(key, value, headers, None))
                    self._reports.append((on_delivery, failure, lost))
                return
            log.append(_Record(key, value, headers, self._txn))
            if on_delivery is not None:
                msg = MemoryMessage(topic, partition, len(log) - 1, log[-1])
                self._reports.append((on_delivery, None, msg))
            self._b.lock.notify_all()

    def poll(self, timeout: float | None = None) -> int:
        with self._b.lock:
            reports, self._reports = self._reports, []
        for callback, err, msg in reports:  # on the calling thread, as librdkafka
            callback(err, msg)
        return len(reports)

    def flush(self, timeout: float | None = None) -> int:
        self.poll(0)
        return 0

    def init_transactions(self, timeout: float | None = None) -> None:
        assert self._tid is not None, "not a transactional producer"
        self._b.fence(self._tid)
        self._epoch = self._b.txn_epochs[self._tid]

    def _check_fenced(self) -> None:
        if self._b.txn_epochs.get(self._tid or "") != self._epoch:
            raise KafkaException(
                KafkaError(KafkaError._FENCED, "producer fenced by a newer instance", fatal=True)
            )

    def begin_transaction(self) -> None:
        with self._b.lock:
            assert self._epoch is not None and self._txn is None, "init, or commit/abort first"
            self._txn = _Txn()

    def send_offsets_to_transaction(
        self, offsets: list[TopicPartition], metadata: GroupMetadata, timeout: float | None = None
    ) -> None:
        with self._b.lock:
            self._check_fenced()
            assert self._txn is not None, "no open transaction"
            if metadata.generation != self._b.generations.get(metadata.group, 0):
                raise KafkaException(
                    KafkaError(KafkaError.ILLEGAL_GENERATION, "stale", txn_requires_abort=True)
                )
            for p in offsets:
                self._txn.offsets[(metadata.group, (p.topic, p.partition))] = p.offset

    def commit_transaction(self, timeout: float | None = None) -> None:
        self.flush()
        with self._b.lock:
            self._check_fenced()
            assert self._txn is not None, "no open transaction"
            failure, self._b.commit_failure = self._b.commit_failure, None
            if failure is not None:
                raise KafkaException(failure)
            if self._txn.failed is not None:
                raise KafkaException(
                    KafkaError(
                        self._txn.failed.code(),
                        f"a delivery of the transaction failed: {self._txn.failed}",
                        txn_requires_abort=True,
                    )
                )
            self._txn.state = "committed"
            self._b.offsets.update(self._txn.offsets)
            self._txn = None
            self._b.lock.notify_all()

    def abort_transaction(self, timeout: float | None = None) -> None:
        with self._b.lock:
            assert self._txn is not None, "no open transaction"
            self._txn.state = "aborted"
            self._txn = None
            self._b.aborted += 1
            purged = KafkaError(KafkaError._PURGE_QUEUE, "aborted")
            self._reports = [(cb, purged, msg) for cb, _, msg in self._reports]
            self._b.lock.notify_all()
        self.poll(0)


class MemoryClients:
    """The runner's :class:`~streams.runner.clients.Clients` on a :class:`MemoryBroker`;
    keeps every client it made (and so the configs the runner asked for)."""

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker
        self.consumers: list[MemoryConsumer] = []
        self.producers: list[MemoryProducer] = []

    def consumer(self, config: dict[str, Any]) -> Any:
        self.consumers.append(MemoryConsumer(self.broker, config))
        return self.consumers[-1]

    def producer(self, config: dict[str, Any]) -> Any:
        self.producers.append(MemoryProducer(self.broker, config))
        return self.producers[-1]

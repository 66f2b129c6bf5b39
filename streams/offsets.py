"""Which input offsets may be committed: only those whose outputs were all acknowledged.

Records of a partition complete out of order (a batch's outputs are acknowledged in any
order); the committable position is the first offset that is not yet complete. Thread-safe:
the poll thread adds and forgets, the processing thread expects, delivery callbacks
acknowledge, and the committing thread reads positions.

Every assignment of a partition has an *epoch*. :meth:`OffsetTracker.add` returns the epoch
the records were consumed in, and the hand-off carries it with them. :meth:`forget` (the
partition was revoked or lost, or is about to be read again from its committed position)
starts a new epoch, so a copy consumed before it is recognised as stale (:meth:`current`)
and dropped instead of being processed, expected or acknowledged twice.

Within an epoch offsets only go forward: :meth:`OffsetTracker.next_offset` is one past the
highest offset consumed, and :meth:`add` ignores anything below it. librdkafka can move a
partition's fetch position back by itself (2.16: a newly assigned partition without a
committed offset, paused and resumed during its offset reset, was read from offset 0 again
a second later); the poller drops such re-deliveries (:class:`streams.runner.polling.Poller`),
so a record committed in this epoch is never processed again. Only :meth:`forget` (a rewind
or a new assignment) goes back.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]


@dataclass
class _Partition:
    epoch: int
    #: Offsets in the order they were consumed (ascending within a partition).
    order: collections.deque[int] = field(default_factory=collections.deque)
    #: Offset -> outputs still awaiting acknowledgement; ``None`` while still being processed.
    outstanding: dict[int, int | None] = field(default_factory=dict)
    #: Highest committable position handed out by :meth:`OffsetTracker.committable`.
    committed: int | None = None
    #: Records not finished yet (being processed, or outputs not yet acknowledged).
    unfinished: int = 0
    #: Set while the partition is being revoked or lost: no new batch takes its records.
    leaving: bool = False
    #: One past the highest offset added in this epoch (``None`` before the first).
    next: int | None = None


class OffsetTracker:
    def __init__(self) -> None:
        self._parts: dict[TopicPartition, _Partition] = {}
        self._epochs: dict[TopicPartition, int] = {}
        self._unfinished = 0  # the sum of the partitions' counts, for a cheap in_flight()
        self._lock = threading.Lock()

    def add(self, tp: TopicPartition, offsets: Iterable[int]) -> int:
        """Records were consumed and handed to processing; returns their epoch. Offsets
        below :meth:`next_offset` (re-deliveries, live or committed) are ignored."""
        with self._lock:
            part = self._parts.get(tp)
            if part is None:
                part = self._parts[tp] = _Partition(self._epochs.get(tp, 0))
            outstanding = part.outstanding
            added = 0
            for offset in offsets:
                if part.next is not None and offset < part.next:
                    continue  # read already in this epoch
                part.order.append(offset)
                outstanding[offset] = None
                part.next = offset + 1
                added += 1
            part.unfinished += added
            self._unfinished += added
            return part.epoch

    def next_offset(self, tp: TopicPartition) -> int | None:
        """One past the highest offset consumed from ``tp`` in its current epoch; ``None``
        before the first record (after an assignment or a rewind)."""
        with self._lock:
            part = self._parts.get(tp)
            return part.next if part is not None else None

    def current(self, tp: TopicPartition, epoch: int) -> bool:
        """Records consumed in ``epoch`` belong to the partition's current assignment, and
        it is not leaving: a batch may take them."""
        with self._lock:
            part = self._parts.get(tp)
            return part is not None and part.epoch == epoch and not part.leaving

    def leaving(self, tps: Iterable[TopicPartition]) -> None:
        """The partitions are being revoked or lost: the batch in progress may finish them
        (:meth:`expect` and :meth:`ack` still count), no later batch takes their records."""
        with self._lock:
            for tp in tps:
                if tp in self._parts:
                    self._parts[tp].leaving = True

    def expect(self, tp: TopicPartition, offset: int, outputs: int, epoch: int) -> bool:
        """Processing of the record produced ``outputs`` records (0: done at once). ``False``
        (produce nothing) if the record is stale (its partition was revoked or rewound since
        it was consumed) or a second copy of a record already expected in this epoch (a
        re-delivery, after a fetch reset say): only the first copy counts."""
        with self._lock:
            part = self._parts.get(tp)
            if part is None or part.epoch != epoch or offset not in part.outstanding:
                return False
            if part.outstanding[offset] is not None:
                return False
            part.outstanding[offset] = outputs
            if outputs == 0:
                part.unfinished -= 1
                self._unfinished -= 1
            return True

    def ack(self, tp: TopicPartition, offset: int, epoch: int) -> None:
        """One output of the record was acknowledged by the broker."""
        with self._lock:
            part = self._parts.get(tp)
            if part is None or epoch != part.epoch:
                return  # revoked or rewound since: not this assignment's output
            left = part.outstanding.get(offset)
            if left is None:
                raise RuntimeError(f"ack for {tp}@{offset} before its outputs were expected")
            part.outstanding[offset] = left - 1
            if left == 1:
                part.unfinished -= 1
                self._unfinished -= 1

    def in_flight(self) -> int:
        """Records consumed and not finished yet (in processing, or outputs not yet
        acknowledged). Finished records that only wait for the next commit do not count:
        they hold no memory, and counting them capped throughput at the commit rate."""
        return self._unfinished

    def awaiting_acks(self, tps: Iterable[TopicPartition]) -> int:
        """Records of ``tps`` whose outputs were produced but not all acknowledged."""
        with self._lock:
            return sum(
                1
                for tp in tps
                if tp in self._parts
                for left in self._parts[tp].outstanding.values()
                if left
            )

    def committable(self) -> dict[TopicPartition, int]:
        """Positions (next offset to read) that advanced since the last call."""
        result: dict[TopicPartition, int] = {}
        with self._lock:
            for tp, part in self._parts.items():
                position = None
                while part.order and part.outstanding[part.order[0]] == 0:
                    done = part.order.popleft()
                    del part.outstanding[done]
                    position = done + 1
                if position is not None and position != part.committed:
                    part.committed = position
                    result[tp] = position
        return result

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Drop partitions (revoked, lost, or about to be rewound): their unfinished records
        will be read again, here after a seek or by their next owner."""
        with self._lock:
            for tp in tps:
                part = self._parts.pop(tp, None)
                if part is not None:
                    self._unfinished -= part.unfinished
                self._epochs[tp] = self._epochs.get(tp, 0) + 1

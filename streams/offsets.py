"""Which input offsets may be committed: only those whose outputs were all acknowledged.

Records of a partition complete out of order (a batch's outputs are acknowledged in any
order); the committable position is the first offset that is not yet complete. Thread-safe:
the processing thread adds and acknowledges, the polling thread commits.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]


@dataclass
class _Partition:
    #: Offsets in the order they were consumed (ascending within a partition).
    order: collections.deque[int] = field(default_factory=collections.deque)
    #: Offset -> outputs still awaiting acknowledgement; ``None`` while still being processed.
    outstanding: dict[int, int | None] = field(default_factory=dict)
    #: Highest committable position handed out by :meth:`OffsetTracker.committable`.
    committed: int | None = None
    #: Which assignment of the partition this is: acks of an earlier one are ignored.
    generation: int = 0


class OffsetTracker:
    def __init__(self) -> None:
        self._parts: dict[TopicPartition, _Partition] = {}
        self._generations: dict[TopicPartition, int] = {}
        self._lock = threading.Lock()

    def add(self, tp: TopicPartition, offset: int) -> None:
        """A record was consumed and handed to processing."""
        with self._lock:
            part = self._parts.get(tp)
            if part is None:
                part = self._parts[tp] = _Partition(generation=self._generations.get(tp, 0))
            if offset in part.outstanding:
                return  # re-delivered after a seek: already tracked
            part.order.append(offset)
            part.outstanding[offset] = None

    def expect(self, tp: TopicPartition, offset: int, outputs: int) -> int | None:
        """Processing of the record produced ``outputs`` records (0: done at once). Returns
        the partition's generation to pass to :meth:`ack`, or ``None`` if it was revoked."""
        with self._lock:
            part = self._parts.get(tp)
            if part is None or offset not in part.outstanding:
                return None  # partition was revoked meanwhile
            part.outstanding[offset] = outputs
            return part.generation

    def ack(self, tp: TopicPartition, offset: int, generation: int | None = 0) -> None:
        """One output of the record was acknowledged by the broker."""
        with self._lock:
            part = self._parts.get(tp)
            if part is None or generation is None or generation != part.generation:
                return  # revoked, maybe assigned again since: not this assignment's output
            left = part.outstanding.get(offset)
            if left is None:
                raise RuntimeError(f"ack for {tp}@{offset} before its outputs were expected")
            part.outstanding[offset] = left - 1

    def tracks(self, topic: str, partition: int, offset: int) -> bool:
        """The record is still tracked: its partition was not revoked since it was consumed."""
        with self._lock:
            part = self._parts.get((topic, partition))
            return part is not None and offset in part.outstanding

    def in_flight(self) -> int:
        """Records consumed and not finished yet (in processing, or outputs not yet
        acknowledged). Finished records that only wait for the next commit do not count:
        they hold no memory, and counting them capped throughput at the commit rate."""
        with self._lock:
            return sum(
                1 for p in self._parts.values() for left in p.outstanding.values() if left != 0
            )

    def in_flight_for(self, tps: list[TopicPartition]) -> int:
        with self._lock:
            return sum(len(self._parts[tp].order) for tp in tps if tp in self._parts)

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

    def forget(self, tps: list[TopicPartition]) -> None:
        """Drop revoked partitions: their unfinished records will be read again elsewhere."""
        with self._lock:
            for tp in tps:
                self._parts.pop(tp, None)
                self._generations[tp] = self._generations.get(tp, 0) + 1

"""The hand-off between the poll thread and the processing thread, and batching (its size is
bounded by the poll thread's backpressure, see :mod:`~streams.runner.polling`).

The poll thread puts each ``consume()`` result in as chunks (one per partition, tagged with
the partition's epoch, see :mod:`streams.offsets`); the processing thread takes batches of up
to ``max_batch`` records, waiting at most ``max_wait`` for a batch to fill once its first
record is there. Chunks go in and out whole where they fit, so a record costs no lock of its
own. Records whose epoch is no longer current are dropped when taken.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Message

from streams.offsets import TopicPartition


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive records of one partition, consumed in one epoch."""

    tp: TopicPartition
    epoch: int
    messages: list[Message]


class Handoff:
    """Chunks in consumption order; :meth:`put` from the poll thread, :meth:`take` from the
    processing thread."""

    def __init__(self) -> None:
        self._chunks: collections.deque[Chunk] = collections.deque()
        self._ready = threading.Condition()
        #: How long the last batch waited to fill after its first record, in seconds.
        self.last_fill_s = 0.0

    def put(self, chunks: list[Chunk]) -> None:
        with self._ready:
            self._chunks.extend(chunks)
            self._ready.notify()

    def take(
        self, max_batch: int, max_wait: float, current: Callable[[Chunk], bool]
    ) -> list[Chunk]:
        """Up to ``max_batch`` current records as chunks; empty after 0.1 s with none."""
        batch: list[Chunk] = []
        size = 0
        deadline: float | None = None
        with self._ready:
            while size < max_batch:
                if not self._chunks:
                    if deadline is None:  # nothing taken yet: wait for a first record
                        if not self._ready.wait(0.1):
                            return batch
                        continue
                    left = deadline - time.monotonic()
                    if left <= 0 or not self._ready.wait(left):
                        break
                    continue
                chunk = self._chunks.popleft()
                if not current(chunk):
                    continue  # consumed before a revocation or rewind: read again later
                room = max_batch - size
                if len(chunk.messages) > room:
                    self._chunks.appendleft(Chunk(chunk.tp, chunk.epoch, chunk.messages[room:]))
                    chunk = Chunk(chunk.tp, chunk.epoch, chunk.messages[:room])
                batch.append(chunk)
                size += len(chunk.messages)
                if deadline is None:
                    deadline = time.monotonic() + max_wait
        if deadline is not None:
            self.last_fill_s = max(0.0, time.monotonic() - (deadline - max_wait))
        return batch

"""The accumulator stage: ``enriched`` + ``labels`` -> dataset shards, on the runner.

State: one :class:`~schemas.accumulator.JoinState` per request id in a RocksDB table fed
from the compacted changelog ``accumulator.state`` (the router's machinery:
:class:`~streams.router.tables.Table`, :class:`~streams.router.tables.TableFollower`). Every
change of a join is an ordinary output of the input record that caused it, so it commits
with that record's offset (in exactly-once mode in the same transaction). The join needs
``enriched`` and ``labels`` keyed by request id and co-partitioned (same partition count):
a record keyed otherwise is rejected (DLQ), since its label would be joined elsewhere.

Delivery contract (at-least-once into the dataset): an input offset is committed only after
the changes it caused are in the changelog, and finished-but-unwritten joins stay there (they
never expire) until a shard holds them. A crash therefore loses no row: the restarted stage
restores the table, finds the unwritten joins again and writes them. A shard is written
(:meth:`DatasetStore.append`, complete on return) inside a batch, before the batch returns;
marking its rows written is a changelog output of that batch, so a crash between the two
writes the rows again (harmless: the dataset's read dedupes by request id, latest label). A
replayed record or label that changes nothing is not written again (the written digest).

Shards are written when ``training.shard_rows`` joins are unwritten or the oldest waited
``training.flush_interval_s``, checked at each batch, and at a clean stop
(:meth:`AccumulatorStage.finish`: ``caslie run accumulator`` on SIGTERM, the end of
``caslie dataset accumulate``); a worker that dies leaves its unwritten joins in the
changelog for the next start. Joins expire ``training.label_wait_s`` after their last change
(:func:`~training.accumulate.join.expiry`), swept at most every
:data:`SWEEP_EVERY_S` (or a quarter of the wait); counted in
``caslie_accumulator_expired_total``. With several replicas each holds every join (a global
table) but writes only those its own input records touched, and those restored unwritten at
its start (so a restart of several replicas may write such rows twice: harmless).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from schemas.accumulator import JoinState
from schemas.dlq import ErrorKind
from schemas.records import EnrichedRecord, LabelEvent
from streams import metrics
from streams.artifacts import DatasetStore, LabelledRecord
from streams.codec import TOMBSTONE
from streams.config import TrainingSettings
from streams.router.tables import Table, TableFollower
from streams.stage import Emit, Inbound, Output, Reject, Result, handle_each
from streams.topics import STAGE_LAYOUT
from training.accumulate.join import expiry, unwritten, with_label, with_record, written

log = logging.getLogger(__name__)
STAGE = "accumulator"
CHANGELOG = "accumulator.state"
#: Longest time between two expiry sweeps.
SWEEP_EVERY_S = 600.0


class AccumulatorStage:
    """enriched, labels -> accumulator.state (its table) and shards of the dataset."""

    name = STAGE
    input_topics = STAGE_LAYOUT[STAGE].inputs

    def __init__(
        self,
        table: Table[JoinState],
        dataset: DatasetStore,
        settings: TrainingSettings,
        follower: TableFollower | None = None,
        clock: Callable[[], float] = time.time,
        publish: Callable[[list[Output]], None] | None = None,
    ) -> None:
        self.table = table
        #: Produces changelog outputs outside a batch (:meth:`finish`, after the runner).
        self.publish = publish
        self.dataset = dataset
        self.settings = settings
        self.follower = follower
        self.clock = clock
        #: Request ids with an unwritten join (restored at start, then kept up to date).
        self.unwritten: set[str] = set()
        #: Rows written since the start.
        self.rows_written = 0
        self._restored = follower is None
        self._restoring = threading.Lock()  # the runner and a bounded run both ask ready()
        self._oldest_unwritten: float | None = None
        self._last_sweep = clock()

    # -- start ---------------------------------------------------------------------------

    def ready(self, timeout: float) -> bool:
        """Whether the table is restored (raises if following it failed); the first time,
        finds the unwritten joins the changelog holds."""
        if self._restored:
            return True
        assert self.follower is not None
        if not self.follower.wait_restored(timeout):
            return False
        with self._restoring:
            if not self._restored:
                for key in self.table.all_keys():
                    state = self.table.get(key)
                    if state is not None and unwritten(state):
                        self._mark(key)
                if self.unwritten:
                    log.info("accumulator: %d unwritten joins restored", len(self.unwritten))
                self._restored = True
        return True

    # -- batches -------------------------------------------------------------------------

    def process(self, batch: Sequence[Inbound]) -> Sequence[Result]:
        results = handle_each(batch, self.handle, STAGE)
        carrier = next(
            (i for i in reversed(range(len(results))) if isinstance(results[i], Emit)), None
        )
        if carrier is None:  # nothing to carry the changes on: the next batch does it
            return results
        now = self.clock()
        extra = self.sweep(now) if self._sweep_due(now) else []
        if self._flush_due(now):
            extra += self.flush(now)
        if extra:
            carried = results[carrier]
            assert isinstance(carried, Emit)
            results[carrier] = Emit([*carried.outputs, *extra])
        return results

    def handle(self, item: Inbound) -> Result:
        value = item.value
        if not isinstance(value, EnrichedRecord | LabelEvent):
            return Reject(ErrorKind.SCHEMA, f"not a record or a label: {type(value).__name__}")
        key = (item.key or b"").decode("utf-8", "replace")
        if key != value.request_id:
            return Reject(
                ErrorKind.SCHEMA,
                f"key {key!r} is not the request id {value.request_id!r}: the join needs "
                "enriched and labels keyed (and so partitioned) by request id",
            )
        now = self.clock()
        state = self.table.get(key)
        new = (
            with_record(state, value, now)
            if isinstance(value, EnrichedRecord)
            else with_label(state, value, item.offset, now)
        )
        if new is None:  # an older label: nothing changes
            return Emit([])
        token = f"{key}:{STAGE}:{item.topic}:{item.partition}:{item.offset}"
        self.table.put(key, new, token)
        if unwritten(new):
            self._mark(key)
        else:
            self.unwritten.discard(key)
        return Emit([Output(CHANGELOG, key, new, token)])

    def _mark(self, key: str) -> None:
        self.unwritten.add(key)
        if self._oldest_unwritten is None:
            self._oldest_unwritten = self.clock()

    def _flush_due(self, now: float) -> bool:
        if not self.unwritten or self._oldest_unwritten is None:
            return False
        waited = now - self._oldest_unwritten
        return len(self.unwritten) >= self.settings.shard_rows or (
            waited >= self.settings.flush_interval_s
        )

    def flush(self, now: float | None = None) -> list[Output]:
        """Write every unwritten join as one shard; the changelog outputs that mark them
        written (for the caller to produce)."""
        now = self.clock() if now is None else now
        rows: list[LabelledRecord] = []
        marks: list[Output] = []
        for key in sorted(self.unwritten):
            state = self.table.get(key)
            if state is None or not unwritten(state):
                continue
            assert state.record is not None and state.label is not None
            rows.append(LabelledRecord(state.record, state.label, joined_at=now))
            done = written(state)
            token = f"{key}:{STAGE}:written:{done.written}"
            self.table.put(key, done, token)
            marks.append(Output(CHANGELOG, key, done, token))
        shard = self.dataset.append(rows, at=now)
        if shard is not None:
            self.rows_written += len(rows)
            metrics.ACCUMULATED_ROWS.inc(len(rows))
            log.info("accumulator: wrote %d rows to %s", len(rows), shard)
        self.unwritten.clear()
        self._oldest_unwritten = None
        return marks

    def finish(self) -> None:
        """After the runner stopped: write the unwritten joins as a last shard, publish
        their written-marks, stop following the table. Not restored yet: nothing to write
        (the next start finds them in the changelog)."""
        try:
            if self.ready(0) and self.unwritten:
                marks = self.flush()
                if self.publish is not None:
                    self.publish(marks)
        finally:
            if self.follower is not None:
                self.follower.close()

    # -- expiry --------------------------------------------------------------------------

    def _sweep_due(self, now: float) -> bool:
        every = min(SWEEP_EVERY_S, self.settings.label_wait_s / 4)
        return now - self._last_sweep >= every

    def sweep(self, now: float) -> list[Output]:
        """Drop the joins that waited ``label_wait_s`` (tombstones for the changelog)."""
        self._last_sweep = now
        outputs: list[Output] = []
        counts: dict[str, int] = {}
        for key in self.table.all_keys():
            state = self.table.get(key)
            if state is None:
                continue
            why = expiry(state, now, self.settings.label_wait_s)
            if why is None:
                continue
            token = f"{key}:{STAGE}:expired:{state.updated_at}"
            self.table.put(key, None, token)
            outputs.append(Output(CHANGELOG, key, TOMBSTONE, token))
            counts[why] = counts.get(why, 0) + 1
            metrics.ACCUMULATOR_EXPIRED.labels(why).inc()
        if counts:
            log.info(
                "accumulator: dropped after %.0fs without a change: %s",
                self.settings.label_wait_s,
                ", ".join(f"{n} {k}" for k, n in sorted(counts.items())),
            )
        return outputs

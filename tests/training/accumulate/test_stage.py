"""The accumulator's join rules through its stage, on a real table and dataset folder, with
an injected clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas import EnrichedRecord, LabelEvent
from schemas.accumulator import JoinState
from schemas.tasks.sa import SA_OPTIONS
from streams.artifacts import DatasetStore
from streams.artifacts.storage import LocalStorage
from streams.codec import Tombstone
from streams.config import RouterSettings, TrainingSettings
from streams.router.store import StateStore
from streams.router.tables import Table
from streams.stage import Emit, Inbound, Reject
from training.accumulate.app import FAMILIES
from training.accumulate.stage import CHANGELOG, AccumulatorStage

DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def dataset(tmp_path: Path) -> DatasetStore:
    return DatasetStore(LocalStorage(tmp_path / "store"))


def _stage(
    tmp_path: Path, dataset: DatasetStore, clock: Clock, **training: float
) -> AccumulatorStage:
    store = StateStore(tmp_path / "state", RouterSettings(), FAMILIES)
    table: Table[JoinState] = Table(CHANGELOG, JoinState, store)
    settings = TrainingSettings(
        **{"label_wait_s": 30 * DAY, "shard_rows": 1000, "flush_interval_s": 60.0, **training}
    )
    return AccumulatorStage(table, dataset, settings, clock=clock)


_offsets = iter(range(10**6))


def _record(rid: str, text: str = "great") -> Inbound:
    value = EnrichedRecord(
        request_id=rid, task="SA", inputs={"review": text}, options=list(SA_OPTIONS)
    )
    return Inbound("t.enriched", 0, next(_offsets), rid.encode(), value, b"")


def _label(rid: str, label: str, at: float | None = None) -> Inbound:
    value = LabelEvent(request_id=rid, task="SA", label=label, event_time=at)
    return Inbound("t.labels", 0, next(_offsets), rid.encode(), value, b"")


def _rows(dataset: DatasetStore) -> dict[str, str]:
    return {r.request_id: r.label.label for r in dataset.read(dataset.snapshot())}


def _shard_count(dataset: DatasetStore) -> int:
    return len(dataset.shards())


def test_a_label_days_after_its_record_joins_and_is_written_after_the_interval(
    tmp_path: Path, dataset: DatasetStore, clock: Clock
) -> None:
    stage = _stage(tmp_path, dataset, clock)
    stage.process([_record("r1")])
    clock.now += 3 * DAY
    [result] = stage.process([_label("r1", "B")])
    assert isinstance(result, Emit) and [o.logical_topic for o in result.outputs] == [CHANGELOG]
    assert stage.unwritten == {"r1"} and not dataset.shards()  # not yet: the interval
    clock.now += 61
    [result] = stage.process([_record("r2")])
    assert isinstance(result, Emit)
    marks = [o.value for o in result.outputs if isinstance(o.value, JoinState) and o.value.written]
    assert [m.request_id for m in marks] == ["r1"]  # the written-mark rides on the batch
    assert _rows(dataset) == {"r1": "B"}
    assert stage.rows_written == 1


def test_shard_rows_finished_joins_make_a_shard_at_once(
    tmp_path: Path, dataset: DatasetStore, clock: Clock
) -> None:
    stage = _stage(tmp_path, dataset, clock, shard_rows=2)
    stage.process([_record("a"), _label("a", "A"), _label("b", "B")])
    assert not dataset.shards()
    stage.process([_record("b")])
    assert _rows(dataset) == {"a": "A", "b": "B"} and _shard_count(dataset) == 1


def test_the_latest_label_wins_by_event_time_then_arrival(
    tmp_path: Path, dataset: DatasetStore, clock: Clock
) -> None:
    stage = _stage(tmp_path, dataset, clock)
    stage.process([_label("r", "A", at=200.0), _label("r", "B", at=100.0), _record("r")])
    stage.process([_label("s", "A"), _label("s", "B"), _record("s")])
    stage.flush()
    assert _rows(dataset) == {"r": "A", "s": "B"}


def test_a_relabel_after_the_write_makes_a_new_row_and_a_replay_writes_nothing(
    tmp_path: Path, dataset: DatasetStore, clock: Clock
) -> None:
    stage = _stage(tmp_path, dataset, clock)
    record, label = _record("r"), _label("r", "A", at=1.0)
    stage.process([record, label])
    stage.flush()
    stage.process([record, label])  # the same records again (a replay after a crash)
    assert stage.unwritten == set()
    stage.flush()
    assert _shard_count(dataset) == 1
    clock.now += 5 * DAY
    stage.process([_label("r", "C", at=2.0)])
    stage.flush()
    assert _shard_count(dataset) == 2 and _rows(dataset) == {"r": "C"}


def test_a_label_read_again_republishes_its_state(
    tmp_path: Path, dataset: DatasetStore, clock: Clock
) -> None:
    """A batch replayed after an aborted transaction reads its label again: the join it made
    is in the table already, but its changelog record was never committed, so the replay
    produces it again (an older label still produces nothing)."""
    stage = _stage(tmp_path, dataset, clock)
    label = _label("r", "A", at=5.0)
    [first] = stage.process([label])
    [again] = stage.process([label])
    [older] = stage.process([_label("r", "B", at=1.0)])
    assert isinstance(first, Emit) and isinstance(again, Emit) and isinstance(older, Emit)
    assert [o.value for o in again.outputs] == [o.value for o in first.outputs]
    assert len(again.outputs) == 1 and older.outputs == []


def test_joins_expire_after_label_wait_unless_unwritten(
    tmp_path: Path, dataset: DatasetStore, clock: Clock
) -> None:
    stage = _stage(tmp_path, dataset, clock, label_wait_s=10 * DAY, flush_interval_s=100 * DAY)
    stage.process([_record("lonely"), _label("orphan", "A"), _record("done"), _label("done", "B")])
    clock.now += 11 * DAY
    [result] = stage.process([_record("fresh")])
    assert isinstance(result, Emit)
    dropped = {o.key for o in result.outputs if isinstance(o.value, Tombstone)}
    assert dropped == {"lonely", "orphan"}  # "done" is unwritten: kept until written
    assert stage.table.get("lonely") is None and stage.table.get("done") is not None
    stage.process([_label("lonely", "A")])  # too late: waits for a record again
    assert stage.unwritten == {"done"}


def test_a_record_keyed_by_something_else_is_rejected(
    tmp_path: Path, dataset: DatasetStore, clock: Clock
) -> None:
    stage = _stage(tmp_path, dataset, clock)
    item = _record("r")
    wrong = Inbound(item.topic, 0, item.offset, b"other", item.value, b"")
    [result] = stage.process([wrong])
    assert isinstance(result, Reject) and "request id" in result.message


def test_finish_writes_what_is_unwritten_and_publishes_its_marks(
    tmp_path: Path, dataset: DatasetStore, clock: Clock
) -> None:
    published: list[list[str]] = []
    stage = _stage(tmp_path, dataset, clock)
    stage.publish = lambda outputs: published.append([o.key for o in outputs])
    stage.process([_record("a"), _label("a", "A"), _record("b")])
    stage.finish()
    assert _rows(dataset) == {"a": "A"} and published == [["a"]]

"""The accumulated dataset on a local folder and on moto's standalone S3 server."""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path

import pytest

from schemas import EnrichedRecord, LabelEvent
from schemas.tasks.sa import SA_OPTIONS
from streams.artifacts import DatasetError, DatasetStore, LabelledRecord, dataset_store_for
from streams.artifacts.datasets import records_and_labels
from streams.artifacts.storage import LocalStorage, open_storage
from streams.config import Settings
from training.dataset import assemble


def _row(
    rid: str, label: str = "B", at: float | None = None, joined: float = 0.0
) -> LabelledRecord:
    record = EnrichedRecord.model_validate(
        {
            "request_id": rid,
            "task": "SA",
            "inputs": {"review": f"review {rid}"},
            "options": list(SA_OPTIONS),
        }
    )
    return LabelledRecord(
        record, LabelEvent(request_id=rid, task="SA", label=label, event_time=at), joined
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> DatasetStore:
    if request.param == "local":
        return DatasetStore(LocalStorage(tmp_path / "store"), "shop")
    endpoint = request.getfixturevalue("moto_s3")
    import boto3

    bucket = f"data-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return DatasetStore(open_storage(f"s3://{bucket}/team", s3_endpoint_url=endpoint), "shop")


def test_a_snapshot_names_the_shards_of_its_time_and_reads_exactly_them(
    store: DatasetStore,
) -> None:
    first = store.append([_row("a"), _row("b")], at=1_000_000.0)
    assert first is not None and first.endswith(".jsonl.gz")
    assert store.append([]) is None
    snap = store.snapshot(at=1_000_100.0)
    store.append([_row("c")], at=1_000_200.0)  # after the snapshot: not in it
    assert snap.rows == 2 and len(snap.shards) == 1
    assert store.get(snap.id) == snap
    assert store.get("latest") == snap
    assert [r.request_id for r in store.read(snap)] == ["a", "b"]
    later = store.snapshot(at=1_000_300.0)
    assert store.snapshots() == [snap.id, later.id]
    assert store.snapshot() == later  # nothing new: the same snapshot, none written
    assert sorted(r.request_id for r in store.read(later)) == ["a", "b", "c"]
    assert later.describe()["rows"] == 3


def test_rows_written_twice_are_read_once_and_the_latest_label_wins(store: DatasetStore) -> None:
    store.append([_row("a", "C", at=5.0), _row("b", "B")], at=1.0)
    store.append([_row("a", "C", at=5.0), _row("b", "B")], at=2.0)  # a replay: same rows again
    store.append([_row("a", "D", at=9.0), _row("b", "E", joined=7.0)], at=3.0)  # relabelled
    store.append([_row("a", "B", at=6.0)], at=4.0)  # a late copy of an older label
    snap = store.snapshot()
    assert snap.rows == 7
    rows = store.read(snap)
    assert {r.request_id: r.label.label for r in rows} == {"a": "D", "b": "E"}
    examples = assemble(*records_and_labels(rows))
    assert sorted(e.output for e in examples) == [SA_OPTIONS[3], SA_OPTIONS[4]]


def test_identical_content_is_one_shard_and_a_changed_shard_is_refused(tmp_path: Path) -> None:
    store = DatasetStore(LocalStorage(tmp_path), "shop")
    assert store.append([_row("a")], at=0.0) == store.append([_row("a")], at=0.0)
    snap = store.snapshot()
    (shard,) = snap.shards
    path = tmp_path / "datasets" / "shop" / "shards" / shard
    assert gzip.decompress(path.read_bytes()).count(b"\n") == 1
    path.write_bytes(gzip.compress(_row("z").to_json() + b"\n"))
    with pytest.raises(DatasetError, match="does not match snapshot"):
        store.read(snap)


def test_missing_and_malformed_names_are_refused(tmp_path: Path) -> None:
    store = DatasetStore(LocalStorage(tmp_path), "shop")
    with pytest.raises(DatasetError, match="no data yet"):
        store.snapshot()
    with pytest.raises(DatasetError, match="no snapshot yet"):
        store.get("latest")
    with pytest.raises(DatasetError, match="not a snapshot id"):
        store.get("../../etc")
    with pytest.raises(DatasetError, match="no snapshot 20260101T000000Z-deadbeef"):
        store.get("20260101T000000Z-deadbeef")
    with pytest.raises(DatasetError, match="letters, digits"):
        DatasetStore(LocalStorage(tmp_path), "a/b")


def test_the_settings_choose_the_store(tmp_path: Path) -> None:
    beside_registry = dataset_store_for(Settings(predictor={"registry": str(tmp_path / "reg")}))
    beside_registry.append([_row("a")])
    assert list((tmp_path / "reg" / "datasets" / "caslie" / "shards").iterdir())
    own = dataset_store_for(
        Settings(training={"dataset_store": str(tmp_path / "data"), "dataset": "eu"})
    )
    own.append([_row("a")])
    assert list((tmp_path / "data" / "datasets" / "eu" / "shards").iterdir())

"""The accumulated training dataset: immutable shards of labelled records and the snapshots
that name them, in a folder or an S3 prefix (the adapter registry's store by default).

Layout (under ``datasets/<name>/``)::

    shards/<UTC time>-<sha256[:16]>.jsonl.gz     immutable, content-addressed
    snapshots/<UTC time>-<sha256[:8]>.json        a manifest: every shard, its digest and rows

A shard holds :class:`LabelledRecord` rows, one JSON object per line (``request_id``,
``record``: the :class:`~schemas.records.EnrichedRecord`, ``label``: the
:class:`~schemas.records.LabelEvent`, ``joined_at``), gzip-compressed. Gzip'd JSON lines, not
Parquet: the rows are nested (slots, captions, verdicts) and always read whole, a training
run reads every row of a snapshot, the format is the topics' own (``zcat | jq`` reads it),
and it needs no ``pyarrow`` (~40 MB) in the trainer's image.

A shard's name ends in the digest of its content, and a shard is written once and never
changed, so writing the same rows again is harmless; a writer that saw rows twice (at-least-
once delivery, a replay after a crash) may write them into two shards. Readers dedupe:
:meth:`DatasetStore.read` returns one row per ``request_id``, the one with the latest label
(by the label's ``event_time``, then ``joined_at``, then shard order), as
:func:`training.dataset.assemble` would choose it.

A snapshot is what a training run trains on: the shards that existed when it was taken, with
their sha256 and row counts, written last (a snapshot exists once its manifest does). Reading
a snapshot verifies every shard against it, so a run trains on exactly the rows it names,
whatever was appended since and whatever the topics still hold."""

from __future__ import annotations

import gzip
import hashlib
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas.records import EnrichedRecord, LabelEvent
from streams.artifacts.storage import Storage

#: The folder of every dataset inside the store.
DATASETS = "datasets"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SNAPSHOT = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")


class DatasetError(Exception):
    """A dataset or snapshot is missing, unreadable or does not match its manifest."""


@dataclass(frozen=True)
class LabelledRecord:
    """One finished training example: an enriched record and the label that answers it."""

    record: EnrichedRecord
    label: LabelEvent
    #: When the join finished (seconds since the epoch): orders labels without event_time.
    joined_at: float = 0.0

    @property
    def request_id(self) -> str:
        return self.record.request_id

    def rank(self) -> tuple[float, float]:
        """Larger is newer: the label's event time, then when it was joined."""
        return (self.label.event_time or 0.0, self.joined_at)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "request_id": self.request_id,
                "record": orjson.Fragment(self.record.to_json()),
                "label": orjson.Fragment(self.label.to_json()),
                "joined_at": self.joined_at,
            }
        )

    @classmethod
    def from_json(cls, line: bytes) -> LabelledRecord:
        row = orjson.loads(line)
        return cls(
            EnrichedRecord.model_validate(row["record"]),
            LabelEvent.model_validate(row["label"]),
            float(row.get("joined_at", 0.0)),
        )


@dataclass(frozen=True)
class Snapshot:
    """A manifest: the shards a training run reads (key -> sha256 and rows)."""

    id: str
    dataset: str
    created_at: float
    shards: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Rows in the shards, duplicates included (:meth:`DatasetStore.read` dedupes)."""
        return sum(int(info["rows"]) for info in self.shards.values())

    def describe(self) -> dict[str, Any]:
        """What a run records of its data: id, dataset, shard and row counts."""
        return {
            "snapshot": self.id,
            "dataset": self.dataset,
            "shards": len(self.shards),
            "rows": self.rows,
            "created_at": self.created_at,
        }


def _stamp(at: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(at))


class DatasetStore:
    """One named dataset in a :class:`~streams.artifacts.storage.Storage`."""

    def __init__(self, storage: Storage, name: str = "caslie") -> None:
        if not _NAME.match(name):
            raise DatasetError(f"dataset name {name!r}: letters, digits, '.', '_', '-' only")
        self.storage = storage
        self.name = name
        self.prefix = f"{DATASETS}/{name}"

    def append(self, rows: Sequence[LabelledRecord], at: float | None = None) -> str | None:
        """Write ``rows`` as one new shard and return its key (``None`` for no rows). The
        shard is complete when this returns (a local file is renamed into place, an S3 object
        appears whole)."""
        if not rows:
            return None
        body = b"".join(row.to_json() + b"\n" for row in rows)
        digest = hashlib.sha256(body).hexdigest()
        key = f"{self.prefix}/shards/{_stamp(time.time() if at is None else at)}-{digest[:16]}"
        key += ".jsonl.gz"
        self.storage.put(key, gzip.compress(body, compresslevel=6, mtime=0))
        return key

    def shards(self) -> list[str]:
        return [k for k in self.storage.list(f"{self.prefix}/shards/") if k.endswith(".jsonl.gz")]

    def snapshot(self, at: float | None = None) -> Snapshot:
        """A manifest of every shard there is now, written to ``snapshots/``; the latest
        snapshot itself when no shard was added since (shards are immutable: only new ones
        are read to be digested). Raises :class:`DatasetError` when the dataset has no shard."""
        keys = [k.rsplit("/", 1)[1] for k in self.shards()]
        if not keys:
            raise DatasetError(f"dataset {self.name!r} has no data yet (run the accumulator)")
        ids = self.snapshots()
        previous = self.get(ids[-1]) if ids else None
        if previous is not None and sorted(previous.shards) == keys:
            return previous
        known = previous.shards if previous is not None else {}
        shards: dict[str, dict[str, Any]] = {}
        for name in keys:
            if name in known:
                shards[name] = known[name]
                continue
            data = self.storage.get(f"{self.prefix}/shards/{name}")
            shards[name] = {
                "sha256": hashlib.sha256(data).hexdigest(),
                "rows": gzip.decompress(data).count(b"\n"),
                "bytes": len(data),
            }
        created = time.time() if at is None else at
        listing = "\n".join(f"{k} {v['sha256']}" for k, v in sorted(shards.items()))
        snapshot_id = f"{_stamp(created)}-{hashlib.sha256(listing.encode()).hexdigest()[:8]}"
        snap = Snapshot(snapshot_id, self.name, created, shards)
        self.storage.put(
            f"{self.prefix}/snapshots/{snapshot_id}.json",
            orjson.dumps(snap.__dict__, option=orjson.OPT_INDENT_2),
        )
        return snap

    def snapshots(self) -> list[str]:
        """Snapshot ids, oldest first."""
        found = []
        for key in self.storage.list(f"{self.prefix}/snapshots/"):
            stem = key.rsplit("/", 1)[1].removesuffix(".json")
            if _SNAPSHOT.match(stem):
                found.append(stem)
        return sorted(found)

    def get(self, snapshot_id: str) -> Snapshot:
        """The snapshot ``snapshot_id`` (``latest``: the newest)."""
        if snapshot_id == "latest":
            ids = self.snapshots()
            if not ids:
                raise DatasetError(f"dataset {self.name!r} has no snapshot yet")
            snapshot_id = ids[-1]
        if not _SNAPSHOT.match(snapshot_id):
            raise DatasetError(f"{snapshot_id!r} is not a snapshot id (e.g. 20261201T120000Z-…)")
        key = f"{self.prefix}/snapshots/{snapshot_id}.json"
        if not self.storage.exists(key):
            raise DatasetError(f"dataset {self.name!r} has no snapshot {snapshot_id}")
        try:
            raw = orjson.loads(self.storage.get(key))
            snap = Snapshot(**raw)
        except (TypeError, orjson.JSONDecodeError) as exc:
            raise DatasetError(f"snapshot {snapshot_id}: unreadable manifest ({exc})") from None
        if snap.id != snapshot_id or snap.dataset != self.name:
            raise DatasetError(f"snapshot {snapshot_id}: the manifest describes {snap.id}")
        return snap

    def rows(self, snapshot: Snapshot) -> Iterable[LabelledRecord]:
        """Every row of the snapshot's shards in shard order, each shard verified first."""
        for shard, info in sorted(snapshot.shards.items()):
            if "/" in shard or shard.startswith("."):
                raise DatasetError(f"snapshot {snapshot.id} names an unsafe shard {shard!r}")
            data = self.storage.get(f"{self.prefix}/shards/{shard}")
            if hashlib.sha256(data).hexdigest() != info["sha256"]:
                raise DatasetError(f"shard {shard} does not match snapshot {snapshot.id}")
            for line in gzip.decompress(data).splitlines():
                if line.strip():
                    yield LabelledRecord.from_json(line)

    def read(self, snapshot: Snapshot) -> list[LabelledRecord]:
        """One row per request id, the newest label's (:meth:`LabelledRecord.rank`; on a tie
        the later shard's), in first-seen order."""
        latest: dict[str, LabelledRecord] = {}
        for row in self.rows(snapshot):
            seen = latest.get(row.request_id)
            if seen is None or row.rank() >= seen.rank():
                latest[row.request_id] = row
        return list(latest.values())


def records_and_labels(
    rows: Iterable[LabelledRecord],
) -> tuple[list[EnrichedRecord], list[LabelEvent]]:
    """The rows as :func:`training.dataset.assemble`'s two inputs."""
    pairs = list(rows)
    return [r.record for r in pairs], [r.label for r in pairs]

"""Labelled events -> training records, through the pipeline's own stages, without a broker.

For data whose labels come with the events (the synthetic claims of
:mod:`training.synthetic`): each query is resolved by its task against tables of the events
(:class:`~schemas.tasks.resolving.MemoryTables`), captioned by the captioner stage (captions
and OCR tokens) and voted on by the voter stage, exactly as ``caslie run`` would, and written
as ``enriched.jsonl`` plus ``labels.jsonl`` (label events pinned to their split) for
``caslie produce`` into the topics that ``caslie retrain`` reads. Command: ``caslie prepare``.

Splits: a request marked ``test`` (held-out brands), or with another evaluation tag
(``test-<tag>``, ``ood-<tag>``: :data:`schemas.records.SPLIT_PATTERN`), keeps it; the others
are ``train``, with a hash of their claim's listing sending ``val_fraction`` of the listings
to ``val`` for the gate (so no image is on both sides).
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from caslie.bench.stage_runs import run_stage
from caslie.stages import build_captioner, build_voter
from schemas.events import ClaimEvent, ProductEvent, parse_query
from schemas.records import TRAINING_SPLITS, EnrichedRecord, LabelEvent, TaskRequest
from schemas.tasks.registry import get_task
from schemas.tasks.resolving import MemoryTables
from streams.config import Settings
from streams.stage import Stage

log = logging.getLogger(__name__)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def write_jsonl(path: Path, rows: Iterable[Any]) -> int:
    n = 0
    with path.open("wb") as out:
        for row in rows:
            data = row.to_json() if hasattr(row, "to_json") else orjson.dumps(row)
            out.write(data + b"\n")
            n += 1
    return n


def split_of(request_id: str, marked: str, val_fraction: float) -> str:
    """An evaluation split (``test``, ``test-<tag>``, ``ood-<tag>``) stays as marked; else
    ``val`` for a stable ``val_fraction`` of the ids, ``train`` for the rest."""
    if marked not in TRAINING_SPLITS:
        return marked
    bucket = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big") / 2**64
    return "val" if bucket < val_fraction else "train"


def resolve_all(
    catalog: Sequence[dict[str, Any]],
    claims: Sequence[dict[str, Any]],
    queries: Sequence[dict[str, Any]],
) -> list[TaskRequest]:
    """Every query resolved by its task against the events (no waiting: all are known)."""
    tables = MemoryTables(
        {p["product_id"]: ProductEvent.model_validate(p) for p in catalog},
        claims={c["claim_id"]: ClaimEvent.model_validate(c) for c in claims},
    )
    requests = []
    for raw in queries:
        query = parse_query(raw)
        requests.append(get_task(query.task).resolve(query, tables))
    return requests


def enrich(
    requests: Sequence[TaskRequest], captioner: Stage, voter: Stage, batch: int = 16
) -> list[EnrichedRecord]:
    """Requests through the captioner and voter stages; a failed record is logged and left
    out (the stages' DLQ reasons)."""
    enriched: list[EnrichedRecord] = []
    started = time.monotonic()
    for start in range(0, len(requests), batch):
        chunk = requests[start : start + batch]
        captioned = run_stage(captioner, chunk, batch)
        voted = run_stage(voter, captioned.outputs, batch)
        lost = captioned.rejected + voted.rejected
        if lost:
            log.warning("%d records of a batch failed in the captioner or voter", lost)
        enriched += [r for r in voted.outputs if isinstance(r, EnrichedRecord)]
        done = start + len(chunk)
        rate = done / max(time.monotonic() - started, 1e-9)
        print(f"\renriched {done}/{len(requests)} ({rate:.1f}/s)", end="", file=sys.stderr)
    print(file=sys.stderr)
    return enriched


def pinned_labels(
    labels: Sequence[dict[str, Any]],
    splits: dict[str, str],
    val_fraction: float,
    groups: dict[str, str] | None = None,
) -> list[LabelEvent]:
    """Label events with their split; ``groups`` maps a request id to what must not straddle
    train and val (its claim's listing: the DD, PM and AE requests of a claim, and the claims
    of one listing, share their images)."""
    groups = groups or {}
    return [
        LabelEvent.model_validate(
            {
                **label,
                "split": split_of(
                    groups.get(label["request_id"], label["request_id"]),
                    splits.get(label["request_id"], "train"),
                    val_fraction,
                ),
            }
        )
        for label in labels
    ]


def listing_groups(
    claims: Sequence[dict[str, Any]], queries: Sequence[dict[str, Any]]
) -> dict[str, str]:
    """Request id -> the listing of the claim it asks about (claim tasks only)."""
    listing = {c["claim_id"]: c["product_id"] for c in claims}
    return {
        q["request_id"]: listing[q["claim_id"]] for q in queries if q.get("claim_id") in listing
    }


def build_stages(settings: Settings, source: Path) -> tuple[Stage, Stage]:
    """The captioner and the voter as ``caslie run`` builds them from ``settings``, with the
    source folder allowed as a ``file://`` root (its images are files)."""
    settings = settings.with_file_root(source)
    return build_captioner(settings), build_voter(settings)


def prepare(source: Path, out: Path, settings: Settings, val_fraction: float) -> tuple[int, int]:
    """Read the events of ``source``, write ``enriched.jsonl`` and ``labels.jsonl`` to
    ``out`` through the stages ``settings`` describe; returns their counts.
    ``FileNotFoundError`` names a missing input file."""
    catalog = read_jsonl(source / "catalog.jsonl")
    claims = read_jsonl(source / "claims.jsonl")
    queries = read_jsonl(source / "queries.jsonl")
    labels = read_jsonl(source / "labels.jsonl")
    splits = orjson.loads((source / "splits.json").read_bytes())
    captioner, voter = build_stages(settings, source)
    enriched = enrich(resolve_all(catalog, claims, queries), captioner, voter)
    out.mkdir(parents=True, exist_ok=True)
    n_records = write_jsonl(out / "enriched.jsonl", enriched)
    pinned = pinned_labels(labels, splits, val_fraction, listing_groups(claims, queries))
    n_labels = write_jsonl(out / "labels.jsonl", pinned)
    return n_records, n_labels


def read_prepared(folder: Path) -> tuple[list[EnrichedRecord], list[LabelEvent]]:
    """The enriched records and label events :func:`prepare` wrote to ``folder`` (raises
    :class:`FileNotFoundError` when either file is missing)."""
    enriched = [EnrichedRecord.model_validate(r) for r in read_jsonl(folder / "enriched.jsonl")]
    labels = [LabelEvent.model_validate(r) for r in read_jsonl(folder / "labels.jsonl")]
    return enriched, labels

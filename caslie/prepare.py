"""Labelled events -> training records, through the pipeline's own stages, without a broker.

For data whose labels come with the events (the synthetic sets of :mod:`training.synthetic`):
each query is resolved by its task against tables of the events
(:class:`~schemas.tasks.resolving.MemoryTables`), captioned by the captioner stage (captions
and OCR tokens) and voted on by the voter stage, exactly as ``caslie run`` would, and written
as ``enriched.jsonl`` plus ``labels.jsonl`` (label events pinned to their split) for
``caslie produce`` into the topics that ``caslie retrain`` reads. Command: ``caslie prepare``.

A source folder holds claims (catalog.jsonl, claims.jsonl, queries.jsonl, labels.jsonl,
splits.json: DD, PM, AE), listings under :data:`LISTINGS` (aspect_schemas.json,
listings.jsonl, queries.jsonl, labels.jsonl, splits.json: LG, asked as the router asks it of
a new listing, ``auto-lg:<listing_id>``), a shop under :data:`SHOP` (catalog.jsonl,
reviews.jsonl, queries.jsonl, labels.jsonl, splits.json: AP, CC, PRP, PSI, MPC, SR; AP's
document is the product's reviews, joined as the router joins them), or any of them.

Splits, per set: a request marked ``test`` (held-out brands), or with another evaluation tag
(``test-<tag>``, ``ood-<tag>``: :data:`schemas.records.SPLIT_PATTERN`), keeps it. A set whose
splits name no ``val`` (the claims) has its other requests ``train``, with a hash of their
claim's listing sending ``val_fraction`` of the listings to ``val`` for the gate (so no image
is on both sides). A set that pins ``val`` itself (the listings; the shop, by brand) chose its
val: its ``train`` and ``val`` stay as marked, a whole group (listing) ``val`` when one of its
requests is.
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
from schemas.events import (
    AspectSchemaEvent,
    ClaimEvent,
    ListingEvent,
    ProductEvent,
    ReviewEvent,
    load_aspect_schemas,
    parse_query,
)
from schemas.records import TRAINING_SPLITS, EnrichedRecord, LabelEvent, TaskRequest
from schemas.tasks.registry import get_task
from schemas.tasks.resolving import MemoryTables
from streams.config import Settings
from streams.stage import Stage

log = logging.getLogger(__name__)
#: The listings' subfolder of a source folder (``python -m training.synthetic --listings``).
LISTINGS = "listings"
#: The shop's subfolder of a source folder (``python -m training.synthetic --shop N``).
SHOP = "shop"
#: The claim set's files; a source has claims when it has any of them.
CLAIM_FILES = ("catalog.jsonl", "claims.jsonl", "queries.jsonl")


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
    *,
    listings: Sequence[dict[str, Any]] = (),
    aspect_schemas: Sequence[AspectSchemaEvent] = (),
    reviews: Sequence[dict[str, Any]] = (),
) -> list[TaskRequest]:
    """Every query resolved by its task against the events (no waiting: all are known);
    a product's reviews in the order given."""
    by_product: dict[str, list[ReviewEvent]] = {}
    for raw in reviews:
        review = ReviewEvent.model_validate(raw)
        by_product.setdefault(review.product_id, []).append(review)
    tables = MemoryTables(
        {p["product_id"]: ProductEvent.model_validate(p) for p in catalog},
        by_product,
        claims={c["claim_id"]: ClaimEvent.model_validate(c) for c in claims},
        listings={x["listing_id"]: ListingEvent.model_validate(x) for x in listings},
        aspect_schemas={s.category: s for s in aspect_schemas},
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
    """Label events with their split (see the module doc); ``groups`` maps a request id to
    what must not straddle train and val (its claim's listing: the DD, PM and AE requests of
    a claim, and the claims of one listing, share their images; an LG request's listing).
    ``val_fraction`` applies to a set whose ``splits`` name no ``val``."""
    groups = groups or {}
    marked = {label["request_id"]: splits.get(label["request_id"], "train") for label in labels}
    pinned_val = {groups.get(rid, rid) for rid, split in marked.items() if split == "val"}
    fraction = 0.0 if pinned_val else val_fraction

    def split(request_id: str) -> str:
        group, mark = groups.get(request_id, request_id), marked[request_id]
        if mark in TRAINING_SPLITS and group in pinned_val:
            return "val"
        return split_of(group, mark, fraction)

    return [
        LabelEvent.model_validate({**label, "split": split(label["request_id"])})
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


def claim_set(source: Path, val_fraction: float) -> tuple[list[TaskRequest], list[LabelEvent]]:
    """The claim set of ``source`` resolved, and its labels pinned to their splits."""
    catalog = read_jsonl(source / "catalog.jsonl")
    claims = read_jsonl(source / "claims.jsonl")
    queries = read_jsonl(source / "queries.jsonl")
    labels = read_jsonl(source / "labels.jsonl")
    splits = orjson.loads((source / "splits.json").read_bytes())
    requests = resolve_all(catalog, claims, queries)
    return requests, pinned_labels(labels, splits, val_fraction, listing_groups(claims, queries))


def listing_set(folder: Path, val_fraction: float) -> tuple[list[TaskRequest], list[LabelEvent]]:
    """The listing set in ``folder`` (:data:`LISTINGS` of a source) resolved against its
    aspect schemas, and its labels pinned to their splits, grouped by listing."""
    schemas = load_aspect_schemas(folder / "aspect_schemas.json")
    listings = read_jsonl(folder / "listings.jsonl")
    queries = read_jsonl(folder / "queries.jsonl")
    labels = read_jsonl(folder / "labels.jsonl")
    splits = orjson.loads((folder / "splits.json").read_bytes())
    requests = resolve_all((), (), queries, listings=listings, aspect_schemas=schemas)
    groups = {q["request_id"]: q["listing_id"] for q in queries if "listing_id" in q}
    return requests, pinned_labels(labels, splits, val_fraction, groups)


def shop_set(folder: Path, val_fraction: float) -> tuple[list[TaskRequest], list[LabelEvent]]:
    """The shop in ``folder`` (:data:`SHOP` of a source) resolved against its catalog and
    reviews, and its labels pinned to their splits (the shop pins val by brand)."""
    catalog = read_jsonl(folder / "catalog.jsonl")
    reviews = read_jsonl(folder / "reviews.jsonl")
    queries = read_jsonl(folder / "queries.jsonl")
    labels = read_jsonl(folder / "labels.jsonl")
    splits = orjson.loads((folder / "splits.json").read_bytes())
    requests = resolve_all(catalog, (), queries, reviews=reviews)
    return requests, pinned_labels(labels, splits, val_fraction)


def prepare(source: Path, out: Path, settings: Settings, val_fraction: float) -> tuple[int, int]:
    """Read the claims, the listings and the shop of ``source`` (any of them, see the module
    doc), write ``enriched.jsonl`` and ``labels.jsonl`` to ``out`` through the stages
    ``settings`` describe; returns their counts. ``FileNotFoundError`` names a missing input
    file (the claims' catalog.jsonl when there is no set)."""
    sets = []
    has_listings = (source / LISTINGS).is_dir()
    has_shop = (source / SHOP).is_dir()
    claims = any((source / name).exists() for name in CLAIM_FILES)
    if claims or not (has_listings or has_shop):
        sets.append(claim_set(source, val_fraction))
    if has_listings:
        sets.append(listing_set(source / LISTINGS, val_fraction))
    if has_shop:
        sets.append(shop_set(source / SHOP, val_fraction))
    captioner, voter = build_stages(settings, source)
    enriched = enrich([r for requests, _ in sets for r in requests], captioner, voter)
    out.mkdir(parents=True, exist_ok=True)
    n_records = write_jsonl(out / "enriched.jsonl", enriched)
    n_labels = write_jsonl(out / "labels.jsonl", [x for _, labels in sets for x in labels])
    return n_records, n_labels


def read_prepared(folder: Path) -> tuple[list[EnrichedRecord], list[LabelEvent]]:
    """The enriched records and label events :func:`prepare` wrote to ``folder`` (raises
    :class:`FileNotFoundError` when either file is missing)."""
    enriched = [EnrichedRecord.model_validate(r) for r in read_jsonl(folder / "enriched.jsonl")]
    labels = [LabelEvent.model_validate(r) for r in read_jsonl(folder / "labels.jsonl")]
    return enriched, labels

"""The synthetic listing dataset for OPAL's LG task: seller photos, aspect schemas, listing
events, reference listings with the seller's noisy ones beside them, LG labels and splits.

:func:`generate_listings` draws ``n`` listings of :mod:`training.synthetic.items` (the four
categories in turn, shuffled), each with 1-3 seller photos (:func:`~training.synthetic.
item_drawing.seller_photo`, every photo of a listing a fresh drawing of the same item) and,
for half of them, a short seller text that names no aspect. Per listing:

- the **listing event** (``ListingEvent``'s fields: ``listing_id``, ``category``, ``images``,
  ``seller_text``, ``event_time``);
- the **reference** row: the gold ``title`` and ``aspects`` (only what the photos show, in
  schema order), ``answer`` (their compact JSON, ``{"title": ..., "aspects": {...}}``, title
  first: the LG label), the seller's ``raw_title`` / ``raw_aspects`` / ``raw_answer`` (unshown
  aspects, off-schema keys and the ``ungrounded`` title tokens, which refinement should drop),
  ``shown``, ``values`` (every aspect's true value) and the ``split``;
- the LG **query** ``{"request_id", "task": "LG", "listing_id"}`` and its **label** event.
  The request id is the router's automatic one, ``auto-lg:<listing_id>``: the rule of the
  claim tasks' ``for_claim`` (``auto-<task code lower-cased>:<claim_id>``) for a listing.

Splits: brands are grouped as for the claims (:func:`~training.synthetic.products.
brand_groups`); ``test_fraction`` of the listings are ``test`` and use test brands only, the
others use training brands and a seeded ``val_fraction`` of them are ``val``. Each listing is
one request, so a split never shares a listing's photos with another. The same seed gives
byte-identical images and events (the image URIs name the folder).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from training.synthetic.claims import BASE_TIME, save_png
from training.synthetic.item_drawing import draw_item, seller_photo
from training.synthetic.items import (
    CATEGORIES,
    reference_aspects,
    reference_title,
    sample_item,
    seller_aspects,
    seller_title,
)
from training.synthetic.products import brand_groups

TASK = "LG"
#: What sellers write beside the photos: condition and hand-over talk, never an aspect.
SELLER_TEXTS: tuple[str, ...] = (
    "Used a handful of times, still in great shape.",
    "Gift I never used. Smoke-free home.",
    "Clearing out the cupboard, priced to sell.",
    "Small mark on the back, see photos.",
    "Happy to combine postage with my other items.",
)


def request_id(listing_id: str) -> str:
    """The router's automatic LG request id for a listing (``auto-lg:<listing_id>``)."""
    return f"auto-{TASK.lower()}:{listing_id}"


def answer_text(title: str, aspects: dict[str, str]) -> str:
    """The LG answer form: compact JSON, ``title`` first, then ``aspects`` in their order."""
    return orjson.dumps({"title": title, "aspects": aspects}).decode()


@dataclass(frozen=True)
class ListingSet:
    """A generated listing set (every field JSON-ready), under ``folder``."""

    folder: Path
    seed: int
    #: AspectSchemaEvent-shaped dicts, one per category.
    schemas: list[dict[str, Any]]
    listings: list[dict[str, Any]]
    references: list[dict[str, Any]]
    queries: list[dict[str, Any]]
    labels: list[dict[str, Any]]
    #: request_id -> "train" / "val" / "test"
    splits: dict[str, str]
    #: brand -> "train" / "test"
    brands: dict[str, str]

    def write(self) -> list[Path]:
        """Write listings, references, queries, labels (JSON Lines), aspect_schemas.json,
        splits.json and manifest.json into ``folder``."""
        written = []
        for name, rows in (
            ("listings.jsonl", self.listings),
            ("references.jsonl", self.references),
            ("queries.jsonl", self.queries),
            ("labels.jsonl", self.labels),
        ):
            path = self.folder / name
            path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
            written.append(path)
        manifest = {"seed": self.seed, "task": TASK, "brands": self.brands}
        for name, obj in (
            ("aspect_schemas.json", self.schemas),
            ("splits.json", self.splits),
            ("manifest.json", manifest),
        ):
            path = self.folder / name
            path.write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n")
            written.append(path)
        return written


def _split_plan(n: int, seed: int, test_fraction: float, val_fraction: float) -> list[str]:
    n_test = round(n * test_fraction) if n > 1 else 0
    n_val = round((n - n_test) * val_fraction) if n - n_test > 1 else 0
    plan = ["test"] * n_test + ["val"] * n_val + ["train"] * (n - n_test - n_val)
    random.Random(f"{seed}:lg-splits").shuffle(plan)
    return plan


def generate_listings(
    folder: Path,
    n: int,
    seed: int = 0,
    *,
    test_fraction: float = 0.25,
    val_fraction: float = 0.1,
    more_photos: float = 0.3,
) -> ListingSet:
    """Draw ``n`` listings into ``folder`` (images under ``folder/images``); see the module
    doc. ``more_photos``: chance of a second photo (and, again, of a third)."""
    if n < 1:
        raise ValueError("the number of listings must be at least 1")
    if not 0 <= val_fraction < 1:
        raise ValueError("val_fraction must be in [0, 1)")
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    groups = brand_groups(seed, test_fraction)
    pool = {s: sorted(b for b, g in groups.items() if g == s) for s in ("train", "test")}
    plan = _split_plan(n, seed, test_fraction, val_fraction)
    categories = [CATEGORIES[j % len(CATEGORIES)] for j in range(n)]
    random.Random(f"{seed}:lg-categories").shuffle(categories)

    listings: list[dict[str, Any]] = []
    references: list[dict[str, Any]] = []
    queries: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    splits: dict[str, str] = {}
    for j, (split, category) in enumerate(zip(plan, categories, strict=True)):
        rng = random.Random(f"{seed}:lg-listing:{j}")
        item = sample_item(rng, rng.choice(pool["test" if split == "test" else "train"]), category)
        listing_id = f"syn{seed}-l{j:05d}"
        n_photos = 1 + (rng.random() < more_photos) + (rng.random() < more_photos / 3)
        refs = [
            save_png(seller_photo(draw_item(item, rng), rng), images / f"{listing_id}-{k}.png")
            for k in range(n_photos)
        ]
        seller_text = rng.choice(SELLER_TEXTS) if rng.random() < 0.5 else None
        listings.append(
            {
                "listing_id": listing_id,
                "category": category.name,
                "images": refs,
                "seller_text": seller_text,
                "event_time": BASE_TIME + 60.0 * j,
            }
        )
        title, aspects = reference_title(item), reference_aspects(item)
        raw_title, ungrounded = seller_title(item, rng)
        raw_aspects = seller_aspects(item, rng)
        answer = answer_text(title, aspects)
        references.append(
            {
                "listing_id": listing_id,
                "category": category.name,
                "split": split,
                "title": title,
                "aspects": aspects,
                "answer": answer,
                "raw_title": raw_title,
                "raw_aspects": raw_aspects,
                "raw_answer": answer_text(raw_title, raw_aspects),
                "ungrounded": ungrounded,
                "shown": list(item.shown()),
                "values": dict(item.values),
            }
        )
        rid = request_id(listing_id)
        queries.append({"request_id": rid, "task": TASK, "listing_id": listing_id})
        labels.append({"request_id": rid, "task": TASK, "label": answer, "source": "synthetic"})
        splits[rid] = split
    schemas = [c.schema_event(BASE_TIME) for c in CATEGORIES]
    return ListingSet(folder, seed, schemas, listings, references, queries, labels, splits, groups)

"""The synthetic claim dataset: listings, claims with customer photos, DD/PM/AE queries, labels.

:func:`generate` draws a catalog of listings (one clean catalog image each) and ``n_claims``
claims on them. Per claim: DD is ``yes`` when the delivered item's photos show damage, PM is
``yes`` when the delivered item is the listed product (same brand, type, size and count; redrawn
with another layout, faces, angle and lighting, so never the catalog image) and ``no`` when it
differs in brand, size or product type; DD and PM are balanced, jointly, within each split. AE's
label is the compact JSON text of ``{key: value}`` over ``keys``, with ``"Unanswerable"`` where
no photo of the claim shows the value (not printed, or covered by damage); Color, the pack's
colour name, is always shown.

Brands are split into ``train`` and ``test`` groups (see
:func:`~training.synthetic.products.brand_groups`); a listing, its claims, and every brand drawn
in them (a PM ``no`` swaps only to a brand of the same group) belong to one split, so test brands
never appear in training. The events are plain JSON-ready dicts in the topic shapes (catalog
products, claims, queries, labels); images are PNG files under ``folder`` referenced by
``file://`` URIs with their sha256. The same seed gives byte-identical images and events (on a
machine with the same fonts and Pillow; the URIs name ``folder``).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from PIL import Image

from training.synthetic.complaints import TextConfig, complaint
from training.synthetic.damage import KINDS, damage, sticker
from training.synthetic.drawing import catalog_shot, draw_pack, photo
from training.synthetic.products import (
    Product,
    brand_groups,
    description,
    different_product,
    sample_product,
    title,
)

DEFAULT_KEYS: tuple[str, ...] = (
    "ProductType",
    "Brand",
    "Size",
    "Count",
    "Color",
    "TargetGender",
    "ExpiryDate",
)
UNANSWERABLE = "Unanswerable"
#: Claims' event_time: a fixed epoch plus one minute per claim (deterministic).
BASE_TIME = 1_767_225_600.0
FILES = ("catalog.jsonl", "claims.jsonl", "queries.jsonl", "labels.jsonl", "splits.json")


@dataclass(frozen=True)
class SyntheticSet:
    """A generated set; every field is JSON-ready. ``truth`` holds per-claim hidden facts."""

    folder: Path
    seed: int
    keys: tuple[str, ...]
    catalog: list[dict[str, Any]]
    claims: list[dict[str, Any]]
    queries: list[dict[str, Any]]
    labels: list[dict[str, Any]]
    #: request_id -> "train" / "test"
    splits: dict[str, str]
    #: brand -> "train" / "test"
    brands: dict[str, str]
    truth: list[dict[str, Any]] = field(default_factory=list)

    def write(self) -> list[Path]:
        """Write the events (JSON Lines), splits.json, truth.jsonl and manifest.json."""
        written = []
        for name, rows in (
            ("catalog.jsonl", self.catalog),
            ("claims.jsonl", self.claims),
            ("queries.jsonl", self.queries),
            ("labels.jsonl", self.labels),
            ("truth.jsonl", self.truth),
        ):
            path = self.folder / name
            path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
            written.append(path)
        for name, obj in (
            ("splits.json", self.splits),
            ("manifest.json", {"seed": self.seed, "keys": list(self.keys), "brands": self.brands}),
        ):
            path = self.folder / name
            path.write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n")
            written.append(path)
        return written


def save_png(image: Image.Image, path: Path) -> dict[str, str]:
    image.save(path, format="PNG")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"url": path.resolve().as_uri(), "sha256": digest}


def _product_facts(product: Product) -> dict[str, Any]:
    return {
        "brand": product.brand,
        "product_type": product.product_type.name,
        "shape": product.shape,
        "size": product.size,
        "count": product.count,
        "colour": product.colour,
        "gender": product.gender,
        "expiry": product.expiry,
    }


def attribute_values(product: Product, shown: set[str]) -> dict[str, str]:
    """Every AE key's value for ``product`` when the fields in ``shown`` are visible."""

    def seen(name: str, value: str | None) -> str:
        return value if value is not None and name in shown else UNANSWERABLE

    return {
        "ProductType": seen("type", product.product_type.name),
        "Brand": seen("brand", product.brand),
        "Size": seen("size", product.size),
        "Count": seen("count", str(product.count) if product.count > 1 else None),
        "Color": product.colour,
        "TargetGender": seen("gender", product.gender),
        "ExpiryDate": seen("expiry", product.expiry),
    }


def _check_keys(keys: Sequence[str]) -> tuple[str, ...]:
    keys = tuple(keys)
    unknown = [k for k in keys if k not in DEFAULT_KEYS]
    if not keys or unknown or len(set(keys)) != len(keys):
        raise ValueError(f"keys must be distinct names from {list(DEFAULT_KEYS)}; got {list(keys)}")
    return keys


def _balanced_cells(n: int, rng: random.Random) -> list[tuple[bool, bool]]:
    """``n`` (damaged, matched) pairs: the four combinations in turn, then shuffled."""
    combos = [(True, True), (False, False), (True, False), (False, True)]
    cells = [combos[i % 4] for i in range(n)]
    rng.shuffle(cells)
    return cells


def generate(
    folder: Path,
    n_claims: int,
    seed: int = 0,
    keys: Sequence[str] = DEFAULT_KEYS,
    *,
    test_fraction: float = 0.25,
    claims_per_listing: int = 2,
    second_photo: float = 0.25,
    text: TextConfig | None = None,
) -> SyntheticSet:
    """Draw ``n_claims`` claims (and their listings) into ``folder``; see the module doc.

    ``claims_per_listing``: claims on each listing (the catalog has ``ceil(n / it)`` listings);
    ``second_photo``: chance that a claim carries a second photo of the delivered item;
    ``text``: how the complaint text correlates with the labels (:class:`TextConfig`).
    """
    if n_claims < 1:
        raise ValueError("n_claims must be at least 1")
    if claims_per_listing < 1:
        raise ValueError("claims_per_listing must be at least 1")
    keys = _check_keys(keys)
    text = text or TextConfig()
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    groups = brand_groups(seed, test_fraction)
    by_split = {s: sorted(b for b, g in groups.items() if g == s) for s in ("train", "test")}

    n_listings = math.ceil(n_claims / claims_per_listing)
    n_test = round(n_listings * test_fraction) if n_listings > 1 else 0
    listing_splits = ["test"] * n_test + ["train"] * (n_listings - n_test)
    random.Random(f"{seed}:listing-splits").shuffle(listing_splits)

    catalog: list[dict[str, Any]] = []
    listings: list[tuple[str, Product, str]] = []
    for j, split in enumerate(listing_splits):
        rng = random.Random(f"{seed}:listing:{j}")
        product = sample_product(rng, rng.choice(by_split[split]))
        product_id = f"syn{seed}-p{j:05d}"
        art = draw_pack(product, rng, catalog=True)
        ref = save_png(catalog_shot(art), images / f"{product_id}.png")
        catalog.append(
            {
                "product_id": product_id,
                "title": title(product),
                "description": description(product),
                "brand": product.brand,
                "category": product.product_type.category,
                "images": [ref],
            }
        )
        listings.append((product_id, product, split))

    order = [i % n_listings for i in range(n_claims)]
    random.Random(f"{seed}:claim-listings").shuffle(order)
    cells: dict[int, tuple[bool, bool]] = {}
    for split in ("train", "test"):
        members = [i for i in range(n_claims) if listings[order[i]][2] == split]
        picked = _balanced_cells(len(members), random.Random(f"{seed}:cells:{split}"))
        cells.update(zip(members, picked, strict=True))

    claims: list[dict[str, Any]] = []
    queries: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    splits: dict[str, str] = {}
    truth: list[dict[str, Any]] = []
    for i in range(n_claims):
        rng = random.Random(f"{seed}:claim:{i}")
        product_id, listed, split = listings[order[i]]
        damaged, matched = cells[i]
        delivered = listed if matched else different_product(rng, listed, by_split[split])
        kinds = sorted(rng.sample(KINDS, 2 if rng.random() < 0.25 else 1)) if damaged else []
        claim_id = f"syn{seed}-c{i:05d}"
        refs: list[dict[str, str]] = []
        shown: set[str] = set()
        for k in range(2 if rng.random() < second_photo else 1):
            art = draw_pack(delivered, rng)
            if rng.random() < 0.3:
                sticker(art, rng)
            damage(art, kinds, rng)
            shown |= art.shown()
            refs.append(save_png(photo(art, rng), images / f"{claim_id}-{k}.png"))
        said = complaint(rng, text, listed, kinds, matched)
        claims.append(
            {
                "claim_id": claim_id,
                "product_id": product_id,
                "text": said.text,
                "images": refs,
                "order_id": f"syn{seed}-o{i:05d}",
                "event_time": BASE_TIME + 60.0 * i,
            }
        )
        values = attribute_values(delivered, shown)
        answers = {
            "DD": "yes" if damaged else "no",
            "PM": "yes" if matched else "no",
            "AE": orjson.dumps({k: values[k] for k in keys}).decode(),
        }
        for task, label in answers.items():
            request_id = f"syn-{task.lower()}-{claim_id}"
            query: dict[str, Any] = {"request_id": request_id, "task": task, "claim_id": claim_id}
            if task == "AE":
                query["keys"] = list(keys)  # the keys its label has
            queries.append(query)
            labels.append(
                {"request_id": request_id, "task": task, "label": label, "source": "synthetic"}
            )
            splits[request_id] = split
        truth.append(
            {
                "claim_id": claim_id,
                "split": split,
                "listed": _product_facts(listed),
                "delivered": _product_facts(delivered),
                "damage": kinds,
                "matched": matched,
                "differs": [
                    name
                    for name, a, b in zip(
                        ("brand", "product_type", "size", "count"),
                        listed.key(),
                        delivered.key(),
                        strict=True,
                    )
                    if a != b
                ],
                "shown": sorted(shown),
                "mentions_damage": said.mentions_damage,
                "mentions_mismatch": said.mentions_mismatch,
            }
        )
    return SyntheticSet(folder, seed, keys, catalog, claims, queries, labels, splits, groups, truth)

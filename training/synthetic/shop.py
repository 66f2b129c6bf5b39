"""A seeded synthetic shop for CASLIE's product tasks AP, CC, PRP, PSI, MPC and SR: a catalog,
reviews, and queries labelled by stated rules (:data:`~training.synthetic.shop_tasks.RULES`).

:func:`generate_shop` builds the catalog (:mod:`training.synthetic.shop_catalog`: every brand
x product type, two variants each, with 2-3 short reviews per product) and ``n`` queries per
task (:mod:`training.synthetic.shop_tasks`), their classes cycled so that each split of each
task is balanced. Request ids are ``shop-<task in lower case>-<n>``; each label is ``yes``/
``no`` or the option letter.

Splits (by brand, so that no product is on two sides): brands are grouped as for the claims
(:func:`~training.synthetic.products.brand_groups`, ``test_fraction`` of them ``test``); of the
training brands a seeded ``val_fraction`` (at least one) are ``val`` brands. A query of split
``s`` names only products of ``s``'s brands; ``test_fraction`` of each task's queries are
``test``, ``val_fraction`` of the rest ``val``. The products carry no images.

:meth:`ShopSet.write` puts catalog.jsonl (ProductEvent), reviews.jsonl (ReviewEvent),
queries.jsonl, labels.jsonl (LabelEvent, split pinned), splits.json and manifest.json (seed,
counts per task, split and class, the rules) into the folder; ``caslie prepare`` reads it
under a source's :data:`caslie.prepare.SHOP`.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from training.synthetic.products import brand_groups
from training.synthetic.shop_catalog import build_catalog, build_reviews
from training.synthetic.shop_tasks import BUILDERS, CLASSES, RULES, Pool

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ShopSet:
    """A generated shop (every field JSON-ready), under ``folder``."""

    folder: Path
    seed: int
    catalog: list[dict[str, Any]]
    reviews: list[dict[str, Any]]
    queries: list[dict[str, Any]]
    labels: list[dict[str, Any]]
    #: request_id -> "train" / "val" / "test"
    splits: dict[str, str]
    #: brand -> "train" / "val" / "test"
    brands: dict[str, str]

    def manifest(self) -> dict[str, Any]:
        counts: Counter[tuple[str, str, str]] = Counter(
            (x["task"], self.splits[x["request_id"]], x["label"]) for x in self.labels
        )
        per_task: dict[str, Any] = {}
        for (task, split, label), n in sorted(counts.items()):
            entry = per_task.setdefault(task, {"total": 0, "classes": {}, "splits": {}})
            entry["total"] += n
            entry["classes"][label] = entry["classes"].get(label, 0) + n
            entry["splits"].setdefault(split, {})[label] = n
        return {
            "seed": self.seed,
            "products": len(self.catalog),
            "reviews": len(self.reviews),
            "tasks": per_task,
            "rules": dict(RULES),
            "brands": self.brands,
        }

    def write(self) -> list[Path]:
        """Write the JSON Lines files, splits.json and manifest.json into ``folder``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name, rows in (
            ("catalog.jsonl", self.catalog),
            ("reviews.jsonl", self.reviews),
            ("queries.jsonl", self.queries),
            ("labels.jsonl", self.labels),
        ):
            path = self.folder / name
            path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
            written.append(path)
        for name, obj in (("splits.json", self.splits), ("manifest.json", self.manifest())):
            path = self.folder / name
            path.write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n")
            written.append(path)
        return written


def shop_brands(seed: int, test_fraction: float, val_fraction: float) -> dict[str, str]:
    """Brand -> ``train``/``val``/``test``: the claims' brand groups, a seeded
    ``val_fraction`` (at least one) of the training brands ``val``."""
    groups = brand_groups(seed, test_fraction)
    train = sorted(b for b, g in groups.items() if g == "train")
    random.Random(f"{seed}:shop-val-brands").shuffle(train)
    n_val = max(1, round(len(train) * val_fraction)) if val_fraction > 0 else 0
    return {**groups, **{b: "val" for b in train[:n_val]}}


def _plan(n: int, task: str, seed: int, test_fraction: float, val_fraction: float) -> list[str]:
    n_test = round(n * test_fraction)
    n_val = round((n - n_test) * val_fraction)
    plan = ["test"] * n_test + ["val"] * n_val + ["train"] * (n - n_test - n_val)
    random.Random(f"{seed}:shop-splits:{task}").shuffle(plan)
    return plan


def generate_shop(
    folder: Path,
    n: int,
    seed: int = 0,
    *,
    test_fraction: float = 0.25,
    val_fraction: float = 0.1,
    tasks: tuple[str, ...] = tuple(BUILDERS),
) -> ShopSet:
    """``n`` labelled queries per task of ``tasks`` over a seeded catalog (see the module
    doc); nothing is written until :meth:`ShopSet.write`."""
    if n < 1:
        raise ValueError("the number of shop queries per task must be at least 1")
    if not 0 <= val_fraction < 1:
        raise ValueError("val_fraction must be in [0, 1)")
    unknown = set(tasks) - set(BUILDERS)
    if unknown:
        raise ValueError(f"no shop builder for {sorted(unknown)}")
    brands = shop_brands(seed, test_fraction, val_fraction)
    products = build_catalog(seed)
    reviews, mentioned = build_reviews(products, seed)
    pools = {
        s: Pool([p for p in products if brands[p.brand] == s], mentioned)
        for s in SPLITS
        if s in brands.values()
    }
    queries: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    splits: dict[str, str] = {}
    for task in tasks:
        plan = _plan(n, task, seed, test_fraction, val_fraction)
        classes = CLASSES[task]
        order = {s: random.Random(f"{seed}:shop-classes:{task}:{s}") for s in SPLITS}
        cycles: dict[str, list[str]] = {s: [] for s in SPLITS}
        for i, split in enumerate(plan):
            if not cycles[split]:  # a fresh shuffled round of every class keeps a split balanced
                cycles[split] = order[split].sample(classes, len(classes))
            label = cycles[split].pop()
            rng = random.Random(f"{seed}:shop-query:{task}:{i}")
            rid = f"shop-{task.lower()}-{i:04d}"
            query = {"request_id": rid, **BUILDERS[task](label, pools[split], rng)}
            queries.append(query)
            labels.append(
                {
                    "request_id": rid,
                    "task": task,
                    "label": label,
                    "source": "synthetic",
                    "split": split,
                }
            )
            splits[rid] = split
    catalog = [p.event(i) for i, p in enumerate(products)]
    return ShopSet(folder, seed, catalog, reviews, queries, labels, splits, brands)

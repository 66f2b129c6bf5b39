"""The benchmark's requests: every one of the seven tasks, each request made unique (its own
product titles and query text) so no stage can answer it from a cache, with real image files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caslie.demo_data import build_sample
from schemas.events import ProductEvent, ReviewEvent, parse_query
from schemas.records import TaskRequest
from schemas.registry import validate
from schemas.tasks.registry import CASLIE_TASKS
from schemas.tasks.resolving import MemoryTables
from streams.router.resolve import resolve

TASKS = CASLIE_TASKS


@dataclass
class Workload:
    """Events for the Kafka side (catalog, reviews, queries) and the same queries resolved
    into requests for the in-process side."""

    products: list[dict[str, Any]] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)
    requests: list[TaskRequest] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.queries)


def _suffix_ids(event: dict[str, Any], tag: str, keys: tuple[str, ...]) -> dict[str, Any]:
    out = dict(event)
    for key in keys:
        if key in out:
            value = out[key]
            out[key] = (
                [f"{v}-{tag}" for v in value] if isinstance(value, list) else f"{value}-{tag}"
            )
    return out


def build_workload(folder: Path, per_task: int, first_variant: int = 0, run: str = "b") -> Workload:
    """``per_task`` requests of each task; variant numbers start at ``first_variant`` so two
    workloads of one run never share a request, a title or a query."""
    sample = build_sample(folder, run)
    queries = [q for q in sample["queries"] if q["task"] in TASKS][: len(TASKS)]
    assert sorted(q["task"] for q in queries) == sorted(TASKS)
    usable = {"kettle", "mug", "teapot", "headphones", "charger"}
    work = Workload()
    for variant in range(first_variant, first_variant + per_task):
        tag = f"{run}{variant}"
        products: dict[str, ProductEvent] = {}
        for product in sample["catalog"]:
            if product["product_id"] not in usable:
                continue
            event = _suffix_ids(product, tag, ("product_id",))
            event["title"] = f"{product['title']} (model {variant})"
            parsed = validate("catalog", event)
            assert isinstance(parsed, ProductEvent)
            products[event["product_id"]] = parsed
            work.products.append(event)
        reviews: dict[str, list[ReviewEvent]] = {}
        for review in sample["reviews"]:
            event = _suffix_ids(review, tag, ("review_id", "product_id"))
            event["text"] = f"{review['text']} Order number {variant}."
            review_event = validate("reviews", event)
            assert isinstance(review_event, ReviewEvent)
            reviews.setdefault(review_event.product_id, []).append(review_event)
            work.reviews.append(event)
        for query in queries:
            event = _suffix_ids(
                query,
                tag,
                (
                    "request_id",
                    "product_id",
                    "other_product_id",
                    "review_id",
                    "history_product_ids",
                    "candidate_product_ids",
                ),
            )
            for text_field in ("question", "query"):
                if text_field in event:
                    event[text_field] = f"{event[text_field]} {variant}"
            parsed_query = parse_query(event)
            work.queries.append(event)

            work.requests.append(resolve(parsed_query, MemoryTables(products, reviews)))
    return work

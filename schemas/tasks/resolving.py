"""What task modules use to turn a query into a self-contained request (pure, no Kafka).

:class:`Tables` is what a task may read of the router's state; :class:`MissingData` says what
is not known yet (the router retries the query later, then gives up to the DLQ);
:func:`new_request` stamps a request as the router's; :func:`image_slot` makes the slot of a
product's first image.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from schemas.base import now

if TYPE_CHECKING:
    from schemas.events import (
        AspectSchemaEvent,
        ClaimEvent,
        ListingEvent,
        ProductEvent,
        Query,
        ReviewEvent,
    )
    from schemas.images import ImageRef
    from schemas.records import ImageSlot, TaskRequest

STAGE = "router"


class Tables(Protocol):
    """The router's tables as a task sees them."""

    def product(self, product_id: str) -> ProductEvent | None: ...

    def reviews_of(self, product_id: str) -> list[ReviewEvent]: ...

    def claim(self, claim_id: str) -> ClaimEvent | None: ...

    def listing(self, listing_id: str) -> ListingEvent | None: ...

    def aspect_schema(self, category: str) -> AspectSchemaEvent | None: ...


class MemoryTables:
    """:class:`Tables` over dicts (tests, the bench, offline data preparation)."""

    def __init__(
        self,
        products: Mapping[str, ProductEvent] | None = None,
        reviews: Mapping[str, list[ReviewEvent]] | None = None,
        claims: Mapping[str, ClaimEvent] | None = None,
        listings: Mapping[str, ListingEvent] | None = None,
        aspect_schemas: Mapping[str, AspectSchemaEvent] | None = None,
    ) -> None:
        self.products = dict(products or {})
        self.reviews = {k: list(v) for k, v in (reviews or {}).items()}
        self.claims = dict(claims or {})
        self.listings = dict(listings or {})
        self.aspect_schemas = dict(aspect_schemas or {})

    def product(self, product_id: str) -> ProductEvent | None:
        return self.products.get(product_id)

    def reviews_of(self, product_id: str) -> list[ReviewEvent]:
        return self.reviews.get(product_id, [])

    def claim(self, claim_id: str) -> ClaimEvent | None:
        return self.claims.get(claim_id)

    def listing(self, listing_id: str) -> ListingEvent | None:
        return self.listings.get(listing_id)

    def aspect_schema(self, category: str) -> AspectSchemaEvent | None:
        return self.aspect_schemas.get(category)


class MissingData(Exception):
    """Something the query needs is not known (yet): products, reviews, a claim, a listing
    or its category's aspect schema; ``products``: the ids of the missing products, if that
    is what is missing (the router tells a rejected product from one not arrived yet)."""

    def __init__(self, what: str, products: tuple[str, ...] = ()) -> None:
        super().__init__(what)
        self.what = what
        self.products = products


def products_of(ids: list[str], tables: Tables) -> dict[str, ProductEvent]:
    """The live products with these ids; :class:`MissingData` names any that are not."""
    found: dict[str, ProductEvent] = {}
    missing = []
    for pid in ids:
        product = tables.product(pid)
        if product is None or product.deleted:
            missing.append(pid)
        else:
            found[pid] = product
    if missing:
        raise MissingData(f"unknown product(s): {', '.join(missing)}", tuple(missing))
    return found


def claim_of(claim_id: str, tables: Tables) -> ClaimEvent:
    claim = tables.claim(claim_id)
    if claim is None:
        raise MissingData(f"unknown claim: {claim_id}")
    return claim


def listing_of(listing_id: str, tables: Tables) -> ListingEvent:
    listing = tables.listing(listing_id)
    if listing is None:
        raise MissingData(f"unknown listing: {listing_id}")
    return listing


def aspect_schema_of(category: str, tables: Tables) -> AspectSchemaEvent:
    """The aspect schema in force for ``category``; :class:`MissingData` until one arrives."""
    schema = tables.aspect_schema(category)
    if schema is None:
        raise MissingData(f"no aspect schema for category {category!r} (topic aspect_schemas)")
    return schema


def slot_for(
    name: str, image: ImageRef | None, caption: Mapping[str, str], judge: Mapping[str, str]
) -> list[ImageSlot]:
    """One image slot (none without an image)."""
    from schemas.records import ImageSlot

    if image is None:
        return []
    return [ImageSlot(slot=name, image=image, caption_vars=dict(caption), judge_vars=dict(judge))]


def image_slot(
    name: str, product: ProductEvent, caption: Mapping[str, str], judge: Mapping[str, str]
) -> list[ImageSlot]:
    """The slot of a product's first image (none without images)."""
    return slot_for(name, product.images[0] if product.images else None, caption, judge)


def new_request(query: Query | None, request_id: str, task: str, **fields: object) -> TaskRequest:
    """A request stamped by the router, carrying the query's adapter override."""
    from schemas.records import TaskRequest, TraceEntry

    stamp = now()
    return TaskRequest.model_validate(
        {
            "request_id": request_id,
            "task": task,
            "adapter": query.adapter if query is not None else None,
            "timestamps": {STAGE: stamp},
            "trace": [TraceEntry(stage=STAGE, at=stamp)],
            **fields,
        }
    )

"""Query events + the router's tables -> self-contained task requests (pure logic, no Kafka).

Each task resolves its own queries (:meth:`schemas.tasks.spec.Task.resolve`); this module
says what the router keeps of each event (:func:`stored_product`, :func:`stored_review`,
:func:`stored_claim`) and is the one entry point the router calls (:func:`resolve`).
"""

from __future__ import annotations

from schemas.events import ClaimEvent, ProductEvent, Query, ReviewEvent
from schemas.records import TaskRequest
from schemas.tasks.registry import get_task
from schemas.tasks.resolving import MissingData, Tables

__all__ = ["MissingData", "resolve", "stored_claim", "stored_product", "stored_review"]

#: Characters of a product description the router keeps (PM's listing text reads no more).
DESCRIPTION_LIMIT = 1_000


def stored_product(product: ProductEvent) -> ProductEvent:
    """What resolution reads of a product, the only part the router keeps: title, category,
    brand (SR's judge slot), the description's first :data:`DESCRIPTION_LIMIT` characters
    (PM's listing) and the first image (one slot per product). The category options (read
    from the incoming event by auto-CC only) are dropped."""
    return ProductEvent(
        product_id=product.product_id,
        title=product.title,
        category=product.category,
        brand=product.brand,
        description=product.description[:DESCRIPTION_LIMIT] if product.description else None,
        images=product.images[:1],
    )


def stored_review(review: ReviewEvent) -> ReviewEvent:
    """What resolution reads of a review: its id, its text (AP's document, SA's input, whole:
    the prompts do not cut it) and its first image."""
    return ReviewEvent(
        review_id=review.review_id,
        product_id=review.product_id,
        text=review.text,
        images=review.images[:1],
    )


def stored_claim(claim: ClaimEvent) -> ClaimEvent:
    """What resolution reads of a claim: all of it but the event time."""
    return claim.model_copy(update={"event_time": None})


def resolve(query: Query, tables: Tables) -> TaskRequest:
    """Build the request, or raise :class:`MissingData` naming what is not known yet."""
    return get_task(query.task).resolve(query, tables)

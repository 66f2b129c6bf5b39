"""Query events + catalog state -> self-contained task requests (pure logic, no Kafka)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from schemas.base import now
from schemas.events import (
    APQuery,
    CCQuery,
    MPCQuery,
    ProductEvent,
    PRPQuery,
    PSIQuery,
    QueryEvent,
    ReviewEvent,
    SAQuery,
    SRQuery,
    query_product_ids,
)
from schemas.records import ImageSlot, TaskRequest, TraceEntry
from schemas.tasks.catalog import MPC_OPTIONS, PRP_OPTIONS, SA_OPTIONS
from schemas.tasks.spec import TaskCode, letter_options

#: Where the router looks products and recent reviews up.
ProductLookup = Callable[[str], ProductEvent | None]
ReviewLookup = Callable[[str], Sequence[ReviewEvent]]

STAGE = "router"


class MissingData(Exception):
    """Something the query needs is not known (yet): products or supporting reviews."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def stored_product(product: ProductEvent) -> ProductEvent:
    """What resolution reads of a product, the only part the router keeps: title, category
    and brand (SR's judge slot), the first image (one slot per product). The description and
    the category options (read from the incoming event by auto-CC only) are dropped."""
    return ProductEvent(
        product_id=product.product_id,
        title=product.title,
        category=product.category,
        brand=product.brand,
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


def _item_text(product: ProductEvent) -> str:
    """SR's ``{title, category, brand}`` judge slot."""
    return ", ".join(p for p in (product.title, product.category, product.brand) if p)


def _slot(
    name: str, product: ProductEvent, caption: dict[str, str], judge: dict[str, str]
) -> list[ImageSlot]:
    if not product.images:
        return []
    return [ImageSlot(slot=name, image=product.images[0], caption_vars=caption, judge_vars=judge)]


def _request(
    query: QueryEvent | None, request_id: str, task: TaskCode, **fields: object
) -> TaskRequest:
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


def resolve(query: QueryEvent, products: ProductLookup, reviews: ReviewLookup) -> TaskRequest:
    """Build the request, or raise :class:`MissingData` naming what is not known yet."""
    found: dict[str, ProductEvent] = {}
    missing = []
    for pid in query_product_ids(query):
        product = products(pid)
        if product is None or product.deleted:
            missing.append(pid)
        else:
            found[pid] = product
    if missing:
        raise MissingData(f"unknown product(s): {', '.join(missing)}")

    match query:
        case APQuery():
            p = found[query.product_id]
            document = query.document
            if document is None:
                recent = reviews(query.product_id)
                if not recent:
                    raise MissingData(f"no document given and no reviews of {query.product_id}")
                document = "\n".join(r.text for r in recent)
            return _request(
                query,
                query.request_id,
                TaskCode.AP,
                inputs={"question": query.question, "document": document},
                slots=_slot("product", p, {"question": query.question}, {"review": document}),
            )
        case CCQuery():
            p = found[query.product_id]
            options = letter_options(query.options)
            return _request(
                query,
                query.request_id,
                TaskCode.CC,
                inputs={"title": p.title},
                options=options,
                slots=_slot("product", p, {"title": p.title}, {"options": ", ".join(options)}),
            )
        case PRPQuery():
            p1, p2 = found[query.product_id], found[query.other_product_id]
            pair1 = {"title": p1.title, "other_title": p2.title}
            pair2 = {"title": p2.title, "other_title": p1.title}
            return _request(
                query,
                query.request_id,
                TaskCode.PRP,
                inputs={"title1": p1.title, "title2": p2.title},
                options=list(PRP_OPTIONS),
                slots=_slot("product1", p1, pair1, pair1) + _slot("product2", p2, pair2, pair2),
            )
        case PSIQuery() | MPCQuery():
            p = found[query.product_id]
            both = {"title": p.title, "query": query.query}
            return _request(
                query,
                query.request_id,
                TaskCode(query.task),
                inputs={"query": query.query, "title": p.title},
                options=list(MPC_OPTIONS) if query.task == "MPC" else [],
                slots=_slot("product", p, both, both),
            )
        case SAQuery():
            text, images = query.review, list(query.images)
            if text is None:
                assert query.product_id is not None and query.review_id is not None
                match = [r for r in reviews(query.product_id) if r.review_id == query.review_id]
                if not match:
                    raise MissingData(f"review {query.review_id} of {query.product_id} not known")
                text, images = match[-1].text, list(match[-1].images)
            review_slots = (
                [
                    ImageSlot(
                        slot="review",
                        image=images[0],
                        caption_vars={"review": text},
                        judge_vars={"review": text},
                    )
                ]
                if images
                else []
            )
            return _request(
                query,
                query.request_id,
                TaskCode.SA,
                inputs={"review": text},
                options=list(SA_OPTIONS),
                slots=review_slots,
            )
        case SRQuery():
            history = [found[pid] for pid in query.history_product_ids]
            candidates = [found[pid] for pid in query.candidate_product_ids]
            options = letter_options([c.title for c in candidates])
            slots: list[ImageSlot] = []
            for i, item in enumerate(history):
                slots += _slot(
                    f"history/{i}", item, {"title": item.title}, {"item": _item_text(item)}
                )
            for opt, item in zip(options, candidates, strict=True):
                letter = opt.split(":", 1)[0]
                slots += _slot(
                    f"option/{letter}", item, {"title": item.title}, {"item": _item_text(item)}
                )
            return _request(
                query,
                query.request_id,
                TaskCode.SR,
                inputs={
                    "history": [h.title for h in history],
                    "candidates": [c.title for c in candidates],
                },
                options=options,
                slots=slots,
            )
    raise AssertionError(f"unhandled query {query!r}")  # pragma: no cover


def cc_request_for_product(product: ProductEvent) -> TaskRequest | None:
    """The automatic CC request for a new product that lists category options."""
    if not product.category_options:
        return None
    options = letter_options(product.category_options)
    return _request(
        None,
        f"auto-cc:{product.product_id}",
        TaskCode.CC,
        inputs={"title": product.title},
        options=options,
        slots=_slot("product", product, {"title": product.title}, {"options": ", ".join(options)}),
    )


def sa_request_for_review(review: ReviewEvent) -> TaskRequest:
    """The automatic SA request for a new review."""
    slots = (
        [
            ImageSlot(
                slot="review",
                image=review.images[0],
                caption_vars={"review": review.text},
                judge_vars={"review": review.text},
            )
        ]
        if review.images
        else []
    )
    return _request(
        None,
        f"auto-sa:{review.review_id}",
        TaskCode.SA,
        inputs={"review": review.text},
        options=list(SA_OPTIONS),
        slots=slots,
    )

"""The router as two stages on the common runner (batching, DLQ, commits, exactly-once).

- :class:`RouterStage` reads ``catalog``, ``reviews``, ``claims``, ``listings``,
  ``aspect_schemas`` and ``queries``: it keeps the tables, resolves queries into
  self-contained ``requests`` (each task resolves its own: see :mod:`schemas.tasks`), asks the
  configured claim tasks of every new claim and the listing tasks of every new listing, and
  sends queries whose products, claims, listings or aspect schemas are not known yet to
  ``queries.waiting``.
- :class:`WaitingStage` reads ``queries.waiting`` in its own consumer group, sleeps until
  each record is due and tries again, so waiting never holds up fresh events.

Each input record is handled on its own: a failure rejects that record alone (DLQ, kind
``processing``) and never repeats the table changes of the records before it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from schemas.base import now
from schemas.dlq import ErrorKind
from schemas.events import (
    AspectSchemaEvent,
    ClaimEvent,
    ListingEvent,
    ProductEvent,
    Query,
    ReviewEvent,
)
from schemas.records import TaskRequest
from schemas.router import RecentReviews, RejectedProduct, WaitingQuery
from schemas.tasks.registry import get_task
from schemas.tasks.resolving import Tables
from streams.codec import TOMBSTONE, Tombstone, decode
from streams.config import RouterSettings, Settings
from streams.dlq import Failure
from streams.redact import redact_text
from streams.router.resolve import (
    MissingData,
    resolve,
    stored_claim,
    stored_product,
    stored_review,
)
from streams.router.store import StateStore
from streams.router.tables import Table, TableFollower, state_dir
from streams.stage import Emit, Inbound, Output, Reject, Result, handle_each
from streams.topics import STAGE_LAYOUT

log = logging.getLogger(__name__)
STAGE = "router"
WAITING_STAGE = "router.waiting"


class RouterTables:
    """The products, recent reviews, claims, listings and aspect schemas of one replica, over
    its state store (what tasks read: :class:`schemas.tasks.resolving.Tables`)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.products: Table[ProductEvent] = Table("router.products", ProductEvent, store)
        self.reviews: Table[RecentReviews] = Table("router.reviews", RecentReviews, store)
        self.claims: Table[ClaimEvent] = Table("router.claims", ClaimEvent, store)
        self.listings: Table[ListingEvent] = Table("router.listings", ListingEvent, store)
        self.aspect_schemas: Table[AspectSchemaEvent] = Table(
            "router.aspect_schemas", AspectSchemaEvent, store
        )
        #: Products whose catalog record the router dead-lettered, with the reason.
        self.rejected: Table[RejectedProduct] = Table("router.rejected", RejectedProduct, store)

    @classmethod
    def open(cls, settings: Settings) -> RouterTables:
        """Tables over this replica's state folder (:func:`~streams.router.tables.state_dir`)."""
        return cls(StateStore.open(state_dir(settings), settings.router))

    def product(self, product_id: str) -> ProductEvent | None:
        return self.products.get(product_id)

    def reviews_of(self, product_id: str) -> list[ReviewEvent]:
        recent = self.reviews.get(product_id)
        return list(recent.reviews) if recent is not None else []

    def claim(self, claim_id: str) -> ClaimEvent | None:
        return self.claims.get(claim_id)

    def listing(self, listing_id: str) -> ListingEvent | None:
        return self.listings.get(listing_id)

    def aspect_schema(self, category: str) -> AspectSchemaEvent | None:
        return self.aspect_schemas.get(category)

    def follower(self, settings: Settings) -> TableFollower:
        """A follower that keeps these tables up to date from their changelogs."""
        tables: dict[str, Table[Any]] = {
            t.logical_topic: t
            for t in (
                self.products,
                self.reviews,
                self.claims,
                self.listings,
                self.aspect_schemas,
                self.rejected,
            )
        }
        return TableFollower(settings, self.store, tables)


def _request_output(request: TaskRequest) -> Output:
    return STAGE_LAYOUT[STAGE].output(request.request_id, request)


class _Resolving:
    """What both stages share: the tables, the settings, and resolve-or-wait."""

    name: str

    def __init__(
        self, tables: RouterTables, follower: TableFollower, settings: RouterSettings
    ) -> None:
        self.tables = tables
        self.follower = follower
        self.settings = settings

    def ready(self, timeout: float) -> bool:
        """Whether the tables are restored (raises if following them failed)."""
        return self.follower.wait_restored(timeout)

    def process(self, batch: Sequence[Inbound]) -> Sequence[Result]:
        return handle_each(batch, self.handle, "router")

    def handle(self, item: Inbound) -> Result:
        raise NotImplementedError

    def with_defaults(self, query: Query) -> Query:
        """The query with the deployment's defaults: AE's keys (``router.attribute_keys``)
        where it names none."""
        keys = self.settings.attribute_keys
        if keys and "keys" in type(query).model_fields and getattr(query, "keys", None) is None:
            return query.model_copy(update={"keys": list(keys)})
        return query

    def resolve_or_wait(
        self,
        query: Query,
        waiting: WaitingQuery,
        tables: Tables | None = None,
        may_give_up: bool = True,
    ) -> Result:
        """The request (resolved against ``tables``, default this replica's), else the query
        back on ``queries.waiting``. The DLQ (and so a failure on ``predictions``) at once
        when a missing product was rejected ("product k2 was rejected: <reason>"), or past
        its deadline (and ``may_give_up``) with what never arrived."""
        try:
            request = resolve(self.with_defaults(query), tables or self.tables)
        except MissingData as exc:
            rejected = [r for r in map(self.tables.rejected.get, exc.products) if r is not None]
            if rejected:
                return Reject(
                    ErrorKind.UNKNOWN_PRODUCT,
                    "; ".join(f"product {r.product_id} was rejected: {r.reason}" for r in rejected),
                )
            if may_give_up and now() >= waiting.deadline:
                what = (
                    f"product(s) {', '.join(exc.products)} never arrived"
                    if exc.products
                    else f"{exc.what}: never arrived"
                )
                return Reject(
                    ErrorKind.UNKNOWN_PRODUCT,
                    f"{what} within {self.settings.product_wait_s:g}s "
                    f"({waiting.attempts} retries; origin {waiting.source_topic}"
                    f"[{waiting.source_partition}]@{waiting.source_offset})",
                )
            again = waiting.model_copy(
                update={
                    "attempts": waiting.attempts + 1,
                    "not_before": now() + self.settings.retry_interval_s,
                }
            )
            dedupe = f"{query.request_id}:wait:{again.attempts}"
            return Emit([Output("queries.waiting", query.request_id, again, dedupe)])
        return Emit([_request_output(request)])


class RouterStage(_Resolving):
    """catalog, reviews, claims, listings, aspect_schemas, queries -> requests,
    queries.waiting, the tables' changelogs."""

    name = STAGE
    input_topics = STAGE_LAYOUT[STAGE].inputs

    def handle(self, item: Inbound) -> Result:
        match item.value:
            case Tombstone():
                return self._on_delete(item)
            case ProductEvent(deleted=True) as product:  # the older form of a delete
                return self._on_delete(item, product.product_id)
            case ProductEvent() as product:
                return self._on_product(item, product)
            case ReviewEvent() as review:
                return self._on_review(item, review)
            case ClaimEvent() as claim:
                return self._on_claim(item, claim)
            case ListingEvent() as listing:
                return self._on_listing(item, listing)
            case AspectSchemaEvent() as schema:
                return self._on_aspect_schema(item, schema)
            case query:
                return self._on_query(item, query)  # type: ignore[arg-type]

    def dead_lettered(self, logical_topic: str, failure: Failure) -> list[Output]:
        """A catalog record dead-lettered: remember its product as rejected, with the reason
        (``router.rejected``), when its JSON or key names a valid product id."""
        if logical_topic != "catalog" or failure.value is None:
            return []
        pid = _product_id(failure)
        try:
            marker = RejectedProduct(
                product_id=pid or "",
                reason=redact_text(failure.message)[:1000] or failure.kind.value,
                rejected_at=now(),
            )
        except ValueError:  # no usable product id: nothing to remember
            return []
        token = f"{marker.product_id}:rejected@{failure.partition}:{failure.offset}"
        self.tables.rejected.put(marker.product_id, marker, token)
        return [Output("router.rejected", marker.product_id, marker, token)]

    def _unrejected(self, item: Inbound, product_id: str) -> list[Output]:
        """The delete of a product's rejection marker, if it has one (a valid upsert or a
        delete came after the rejected record)."""
        if self.tables.rejected.get(product_id) is None:
            return []
        token = _token(item, f"{product_id}:unrejected")
        self.tables.rejected.put(product_id, None, token)
        return [Output("router.rejected", product_id, TOMBSTONE, token)]

    def _on_delete(self, item: Inbound, product_id: str | None = None) -> Result:
        if product_id is None:
            if not item.key:
                return Reject(ErrorKind.SCHEMA, "a catalog tombstone needs the product id as key")
            product_id = item.key.decode("utf-8", "replace")
        token = _token(item, f"{product_id}:deleted")
        outputs = [Output("router.products", product_id, TOMBSTONE, token)]
        outputs += self._unrejected(item, product_id)
        self.tables.products.put(product_id, None, token)
        return Emit(outputs)

    def _on_product(self, item: Inbound, product: ProductEvent) -> Result:
        pid = product.product_id
        token = _token(item, f"{pid}:product")
        kept = stored_product(product)
        outputs = [Output("router.products", pid, kept, token)]
        is_new = self.tables.product(pid) is None
        if is_new and self.settings.auto_cc:
            request = get_task("CC").for_product(product)
            if request is not None:
                outputs.append(_request_output(request))
        outputs += self._unrejected(item, pid)
        self.tables.products.put(pid, kept, token)  # last: nothing above may fail after it
        return Emit(outputs)

    def _on_review(self, item: Inbound, review: ReviewEvent) -> Result:
        pid = review.product_id
        kept = [r for r in self.tables.reviews_of(pid) if r.review_id != review.review_id]
        recent = RecentReviews(
            product_id=pid, reviews=[*kept, stored_review(review)][-self.settings.recent_reviews :]
        )
        token = _token(item, f"{pid}:reviews:{review.review_id}")
        outputs = [Output("router.reviews", pid, recent, token)]
        if self.settings.auto_sa:
            request = get_task("SA").for_review(review)
            if request is not None:
                outputs.append(_request_output(request))
        self.tables.reviews.put(pid, recent, token)
        return Emit(outputs)

    def _on_claim(self, item: Inbound, claim: ClaimEvent) -> Result:
        """Keep the claim; ask the configured claim tasks of a new one (each resolves now, or
        waits for the claim's listing like any query; the claim is kept either way)."""
        token = _token(item, f"{claim.claim_id}:claim")
        kept = stored_claim(claim)
        outputs = [Output("router.claims", claim.claim_id, kept, token)]
        if self.tables.claim(claim.claim_id) is not None:  # an update: asked already
            self.tables.claims.put(claim.claim_id, kept, token)
            return Emit(outputs)
        outputs += self._claim_queries(item, claim, _WithPending(self.tables, claim=kept))
        self.tables.claims.put(claim.claim_id, kept, token)  # last: nothing may fail after it
        return Emit(outputs)

    def _on_listing(self, item: Inbound, listing: ListingEvent) -> Result:
        """Keep the listing; ask the configured listing tasks of a new one (each resolves now,
        or waits for the aspect schema of the listing's category; the listing is kept either
        way)."""
        token = _token(item, f"{listing.listing_id}:listing")
        kept = listing.model_copy(update={"event_time": None})
        outputs = [Output("router.listings", listing.listing_id, kept, token)]
        if self.tables.listing(listing.listing_id) is None:  # an update: asked already
            queries = (get_task(code).for_listing(kept) for code in self.settings.listing_tasks)
            outputs += self._auto_queries(item, queries, _WithPending(self.tables, listing=kept))
        self.tables.listings.put(listing.listing_id, kept, token)  # last: nothing may fail after
        return Emit(outputs)

    def _on_aspect_schema(self, item: Inbound, schema: AspectSchemaEvent) -> Result:
        """Keep a category's aspect schema: listings resolved after it read it (listings
        waiting for their category's first schema resolve on their next retry)."""
        token = _token(item, f"{schema.category}:aspect_schema")
        kept = schema.model_copy(update={"event_time": None})
        self.tables.aspect_schemas.put(schema.category, kept, token)
        return Emit([Output("router.aspect_schemas", schema.category, kept, token)])

    def _claim_queries(self, item: Inbound, claim: ClaimEvent, tables: Tables) -> list[Output]:
        queries = (get_task(code).for_claim(claim) for code in self.settings.claim_tasks)
        return self._auto_queries(item, queries, tables)

    def _auto_queries(
        self, item: Inbound, queries: Iterable[Query | None], tables: Tables
    ) -> list[Output]:
        """The outputs of the automatic queries of a new claim or listing: a request each, or
        the query on ``queries.waiting`` (a first try never gives up)."""
        outputs: list[Output] = []
        for query in queries:
            if query is None:
                continue
            result = self._on_query(item, query, query.to_json(), tables, may_give_up=False)
            assert isinstance(result, Emit)  # a first try that misses waits, never rejects
            outputs += result.outputs
        return outputs

    def _on_query(
        self,
        item: Inbound,
        query: Query,
        raw: bytes | None = None,
        tables: Tables | None = None,
        may_give_up: bool = True,
    ) -> Result:
        seen = now()
        waiting = WaitingQuery(
            query=(raw or item.raw).decode(),
            source_topic=item.topic,
            source_partition=item.partition,
            source_offset=item.offset,
            first_seen=seen,
            deadline=seen + self.settings.product_wait_s,
            not_before=seen + self.settings.retry_interval_s,
        )
        return self.resolve_or_wait(query, waiting, tables, may_give_up)


class WaitingStage(_Resolving):
    """queries.waiting -> requests, queries.waiting (again) or the DLQ past the deadline."""

    name = WAITING_STAGE
    input_topics = STAGE_LAYOUT[WAITING_STAGE].inputs

    def handle(self, item: Inbound) -> Result:
        waiting = item.value
        assert isinstance(waiting, WaitingQuery)
        delay = waiting.not_before - now()
        if delay > 0:
            time.sleep(min(delay, self.settings.retry_interval_s))
        query = decode(waiting.query.encode(), "queries")
        return self.resolve_or_wait(query, waiting)  # type: ignore[arg-type]


class _WithPending:
    """The tables with one claim or listing added before the table has it."""

    def __init__(
        self,
        tables: Tables,
        claim: ClaimEvent | None = None,
        listing: ListingEvent | None = None,
    ) -> None:
        self._tables = tables
        self._claim = claim
        self._listing = listing

    def product(self, product_id: str) -> ProductEvent | None:
        return self._tables.product(product_id)

    def reviews_of(self, product_id: str) -> list[ReviewEvent]:
        return self._tables.reviews_of(product_id)

    def claim(self, claim_id: str) -> ClaimEvent | None:
        if self._claim is not None and claim_id == self._claim.claim_id:
            return self._claim
        return self._tables.claim(claim_id)

    def listing(self, listing_id: str) -> ListingEvent | None:
        if self._listing is not None and listing_id == self._listing.listing_id:
            return self._listing
        return self._tables.listing(listing_id)

    def aspect_schema(self, category: str) -> AspectSchemaEvent | None:
        return self._tables.aspect_schema(category)


def _product_id(failure: Failure) -> str | None:
    """The product id of a dead-lettered catalog record: its JSON's ``product_id`` where
    readable, else its key."""
    try:
        obj = orjson.loads(failure.value or b"")
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict) and isinstance(obj.get("product_id"), str):
        pid: str = obj["product_id"]
        return pid
    return failure.key.decode("utf-8", "replace") if failure.key else None


def _token(item: Inbound, what: str) -> str:
    """The dedupe id of a table change: the same for a redelivery of its input record, unique
    per input record otherwise (the follower matches the local overlay on it)."""
    return f"{what}@{item.partition}:{item.offset}"

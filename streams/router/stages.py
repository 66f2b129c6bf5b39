"""The router as two stages on the common runner (batching, DLQ, commits, exactly-once).

- :class:`RouterStage` reads ``catalog``, ``reviews`` and ``queries``: it keeps the tables,
  resolves queries into self-contained ``requests`` and sends queries whose products are not
  known yet to ``queries.waiting``.
- :class:`WaitingStage` reads ``queries.waiting`` in its own consumer group, sleeps until
  each record is due and tries again, so waiting never holds up fresh events.

Each input record is handled on its own: a failure rejects that record alone (DLQ, kind
``processing``) and never repeats the table changes of the records before it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from schemas.base import now
from schemas.dlq import ErrorKind
from schemas.events import ProductEvent, QueryEvent, ReviewEvent
from schemas.records import TaskRequest
from schemas.router import RecentReviews, WaitingQuery
from streams.codec import TOMBSTONE, Tombstone, decode
from streams.config import RouterSettings, Settings
from streams.router.resolve import (
    MissingData,
    cc_request_for_product,
    resolve,
    sa_request_for_review,
    stored_product,
    stored_review,
)
from streams.router.store import StateStore
from streams.router.tables import Table, TableFollower, state_dir
from streams.stage import Emit, Inbound, Output, Reject, Result

log = logging.getLogger(__name__)
STAGE = "router"
WAITING_STAGE = "router.waiting"


class RouterTables:
    """The products and recent reviews of one replica, over its state store."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.products: Table[ProductEvent] = Table("router.products", ProductEvent, store)
        self.reviews: Table[RecentReviews] = Table("router.reviews", RecentReviews, store)

    @classmethod
    def open(cls, settings: Settings) -> RouterTables:
        """Tables over this replica's state folder (:func:`~streams.router.tables.state_dir`)."""
        return cls(StateStore.open(state_dir(settings), settings.router))

    def product(self, product_id: str) -> ProductEvent | None:
        return self.products.get(product_id)

    def reviews_of(self, product_id: str) -> list[ReviewEvent]:
        recent = self.reviews.get(product_id)
        return list(recent.reviews) if recent is not None else []

    def follower(self, settings: Settings) -> TableFollower:
        """A follower that keeps these tables up to date from their changelogs."""
        tables: dict[str, Table[Any]] = {t.logical_topic: t for t in (self.products, self.reviews)}
        return TableFollower(settings, self.store, tables)


def _request_output(request: TaskRequest) -> Output:
    return Output("requests", request.request_id, request, f"{request.request_id}:router")


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
        results: list[Result] = []
        for item in batch:
            try:
                results.append(self.handle(item))
            except Exception as exc:
                log.exception("router failed on %s[%d]@%d", item.topic, item.partition, item.offset)
                results.append(Reject(ErrorKind.PROCESSING, f"{type(exc).__name__}: {exc}"))
        return results

    def handle(self, item: Inbound) -> Result:
        raise NotImplementedError

    def resolve_or_wait(self, query: QueryEvent, waiting: WaitingQuery) -> Result:
        try:
            request = resolve(query, self.tables.product, self.tables.reviews_of)
        except MissingData as exc:
            if now() >= waiting.deadline:
                waited = now() - waiting.first_seen
                return Reject(
                    ErrorKind.UNKNOWN_PRODUCT,
                    f"{exc.what} (waited {waited:.1f}s, {waiting.attempts} retries; "
                    f"origin {waiting.source_topic}[{waiting.source_partition}]"
                    f"@{waiting.source_offset})",
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
    """catalog, reviews, queries -> requests, queries.waiting, the tables' changelogs."""

    name = STAGE
    input_topics = ("catalog", "reviews", "queries")

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
            case query:
                return self._on_query(item, query)  # type: ignore[arg-type]

    def _on_delete(self, item: Inbound, product_id: str | None = None) -> Result:
        if product_id is None:
            if not item.key:
                return Reject(ErrorKind.SCHEMA, "a catalog tombstone needs the product id as key")
            product_id = item.key.decode("utf-8", "replace")
        token = _token(item, f"{product_id}:deleted")
        self.tables.products.put(product_id, None, token)
        return Emit([Output("router.products", product_id, TOMBSTONE, token)])

    def _on_product(self, item: Inbound, product: ProductEvent) -> Result:
        pid = product.product_id
        token = _token(item, f"{pid}:product")
        kept = stored_product(product)
        outputs = [Output("router.products", pid, kept, token)]
        is_new = self.tables.product(pid) is None
        if is_new and self.settings.auto_cc:
            request = cc_request_for_product(product)
            if request is not None:
                outputs.append(_request_output(request))
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
            outputs.append(_request_output(sa_request_for_review(review)))
        self.tables.reviews.put(pid, recent, token)
        return Emit(outputs)

    def _on_query(self, item: Inbound, query: QueryEvent) -> Result:
        seen = now()
        waiting = WaitingQuery(
            query=item.raw.decode(),
            source_topic=item.topic,
            source_partition=item.partition,
            source_offset=item.offset,
            first_seen=seen,
            deadline=seen + self.settings.product_wait_s,
            not_before=seen + self.settings.retry_interval_s,
        )
        return self.resolve_or_wait(query, waiting)


class WaitingStage(_Resolving):
    """queries.waiting -> requests, queries.waiting (again) or the DLQ past the deadline."""

    name = WAITING_STAGE
    input_topics = ("queries.waiting",)

    def handle(self, item: Inbound) -> Result:
        waiting = item.value
        assert isinstance(waiting, WaitingQuery)
        delay = waiting.not_before - now()
        if delay > 0:
            time.sleep(min(delay, self.settings.retry_interval_s))
        query = decode(waiting.query.encode(), "queries")
        return self.resolve_or_wait(query, waiting)  # type: ignore[arg-type]


def _token(item: Inbound, what: str) -> str:
    """The dedupe id of a table change: the same for a redelivery of its input record, unique
    per input record otherwise (the follower matches the local overlay on it)."""
    return f"{what}@{item.partition}:{item.offset}"

"""The router (faust-streaming): catalog and recent reviews as global tables, query
resolution into ``requests``, the delay queue for late products, and the DLQ.

Every event is handled inside ``_guarded``: whatever goes wrong with one event sends it to
the DLQ with a reason and the agent keeps going; only a failure to reach the DLQ itself stops
the worker (non-zero exit), so no event is skipped silently.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson
from faust.types import EventT, StreamT

from schemas.base import now
from schemas.dlq import ErrorKind
from schemas.events import ProductEvent, QueryEvent, ReviewEvent
from schemas.records import TaskRequest
from streams import metrics
from streams.codec import decode
from streams.config import Settings
from streams.dlq import DlqPolicy, Failure, make_envelope
from streams.exceptions import DecodeFailure, DlqLimitExceeded
from streams.health import Health
from streams.router.resolve import (
    MissingData,
    cc_request_for_product,
    resolve,
    sa_request_for_review,
)
from streams.router.waiting import WaitingQuery
from streams.runner import DEDUPE_HEADER
from streams.topics import topic_name

log = logging.getLogger(__name__)
STAGE = "router"
#: The logical topics the router consumes.
INPUTS = ("catalog", "reviews", "queries", "queries.waiting")
EXIT_AGENT_FAILED = 70


def faust_broker_options(settings: Settings) -> dict[str, Any]:
    """Map librdkafka-style security settings onto faust's credentials."""
    kafka = settings.kafka
    protocol = kafka.get("security.protocol", "PLAINTEXT").upper()
    options: dict[str, Any] = {}
    ssl_context = None
    if protocol in ("SSL", "SASL_SSL"):
        import ssl

        ssl_context = ssl.create_default_context(cafile=kafka.get("ssl.ca.location"))
        if kafka.get("ssl.certificate.location"):
            ssl_context.load_cert_chain(
                kafka["ssl.certificate.location"], kafka.get("ssl.key.location")
            )
    if protocol.startswith("SASL"):
        mechanism = kafka.get("sasl.mechanism", "PLAIN").upper()
        options["broker_credentials"] = faust.SASLCredentials(
            username=kafka.get("sasl.username"),
            password=kafka.get("sasl.password"),
            mechanism=mechanism,
            ssl_context=ssl_context,
        )
    elif ssl_context is not None:
        options["broker_credentials"] = faust.SSLCredentials(ssl_context)
    return options


def faust_group_options(settings: Settings) -> dict[str, Any]:
    """Carry the consumer-group timing of ``[kafka]`` over to faust (aiokafka), so a router
    that died leaves the group as fast as the other stages do (faust's default is 60 s)."""
    kafka = settings.kafka
    options: dict[str, Any] = {}
    if "session.timeout.ms" in kafka:
        session_s = int(kafka["session.timeout.ms"]) / 1000
        options["broker_session_timeout"] = session_s
        options["broker_heartbeat_interval"] = min(3.0, session_s / 3)
    if "max.poll.interval.ms" in kafka:
        options["broker_max_poll_interval"] = int(kafka["max.poll.interval.ms"]) / 1000
    return options


def topic_partitions(settings: Settings, logical: str) -> int | None:
    """Partitions of an existing topic, or ``None`` if it does not exist (yet)."""
    from streams.clients import make_admin

    name = topic_name(settings, logical)
    metadata = make_admin(settings).list_topics(name, timeout=15)
    topic = metadata.topics.get(name)
    if topic is None or topic.error is not None or not topic.partitions:
        return None
    return len(topic.partitions)


class Router:
    """Builds the faust app and its agents for one settings object."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        servers = ";".join(f"kafka://{s.strip()}" for s in settings.bootstrap_servers.split(","))
        self.app = faust.App(
            f"{settings.topic_prefix}router",
            broker=servers,
            store="memory://",
            web_enabled=False,
            topic_partitions=settings.partitions,
            topic_replication_factor=settings.replication_factor,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            # commit as often as the worker stages do (faust: 2.8 s): fewer repeats after a crash
            broker_commit_interval=0.5,
            **faust_broker_options(settings),
            **faust_group_options(settings),
        )
        self._policy = DlqPolicy(settings.dlq)
        #: When the last event was taken from any input (the stall check reads it).
        self.handled_at = time.monotonic()
        raw: dict[str, Any] = {
            "key_type": bytes,
            "value_type": bytes,
            "key_serializer": "raw",
            "value_serializer": "raw",
        }
        self.catalog = self.app.topic(topic_name(settings, "catalog"), **raw)
        self.reviews = self.app.topic(topic_name(settings, "reviews"), **raw)
        self.queries = self.app.topic(topic_name(settings, "queries"), **raw)
        self.waiting = self.app.topic(topic_name(settings, "queries.waiting"), **raw)
        self.requests = self.app.topic(topic_name(settings, "requests"), **raw)
        self.dlq = self.app.topic(topic_name(settings, "dlq"), **raw)
        table_opts: dict[str, Any] = {"key_type": str, "value_type": str, "default": None}
        # A table's partitions must match its source topic's, whatever the config says.
        self.products = self.app.GlobalTable(
            "products",
            partitions=topic_partitions(settings, "catalog") or settings.partitions,
            **table_opts,
        )
        self.recent_reviews = self.app.GlobalTable(
            "recent-reviews",
            partitions=topic_partitions(settings, "reviews") or settings.partitions,
            **table_opts,
        )
        self.app.agent(self.catalog, name="catalog")(self._catalog_agent)
        self.app.agent(self.reviews, name="reviews")(self._reviews_agent)
        self.app.agent(self.queries, name="queries")(self._queries_agent)
        self.app.agent(self.waiting, name="waiting")(self._waiting_agent)

    # -- lookups -----------------------------------------------------------------------

    def product(self, product_id: str) -> ProductEvent | None:
        raw = self.products.get(product_id)
        return ProductEvent.from_json(raw) if raw else None

    def reviews_of(self, product_id: str) -> list[ReviewEvent]:
        raw = self.recent_reviews.get(product_id)
        return [ReviewEvent.model_validate(r) for r in orjson.loads(raw)] if raw else []

    # -- sending -----------------------------------------------------------------------

    async def _send(self, topic: faust.TopicT, key: str, value: bytes, dedupe: str) -> None:
        """Send and wait for the broker's acknowledgement before the input is acked."""
        fut = await topic.send(
            key=key.encode(), value=value, headers={DEDUPE_HEADER: dedupe.encode()}
        )
        await fut
        metrics.RECORDS_OUT.labels(STAGE, topic.get_topic_name()).inc()

    async def _emit_request(self, request: TaskRequest) -> None:
        await self._send(
            self.requests, request.request_id, request.to_json(), f"{request.request_id}:router"
        )

    async def _dead_letter(
        self, event: EventT[bytes], kind: ErrorKind, message: str, raw: bytes | None = None
    ) -> None:
        msg = event.message
        self._policy.check_invalid(STAGE)
        failure = Failure(
            msg.topic,
            msg.partition,
            msg.offset,
            event.key,
            raw if raw is not None else event.value,
            kind,
            message,
        )
        envelope = make_envelope(STAGE, failure, self.settings.dlq)
        log.warning(
            "dead-lettered %s[%d]@%d: %s: %s", msg.topic, msg.partition, msg.offset, kind, message
        )
        key = event.key.decode("utf-8", "replace") if event.key else ""
        metrics.DLQ_RECORDS.labels(STAGE, kind.value).inc()
        await self._send(
            self.dlq, key, envelope.to_json(), f"dlq:{msg.topic}:{msg.partition}:{msg.offset}"
        )

    async def _guarded(
        self, stream: StreamT[bytes], handle: Callable[[EventT[bytes]], Awaitable[None]]
    ) -> None:
        async for event in stream.events():
            self.handled_at = time.monotonic()
            metrics.RECORDS_IN.labels(STAGE, event.message.topic).inc()
            try:
                await handle(event)
                self._policy.record_valid()
            except DecodeFailure as exc:
                await self._fail(event, exc.kind, exc.message)
            except Exception as exc:
                log.exception("router failed on an event")
                await self._fail(event, ErrorKind.PROCESSING, f"{type(exc).__name__}: {exc}")

    async def _fail(self, event: EventT[bytes], kind: ErrorKind, message: str) -> None:
        try:
            await self._dead_letter(event, kind, message)
        except DlqLimitExceeded as exc:
            log.error("%s", exc)
            os._exit(3)
        except Exception:
            log.exception("could not reach the DLQ; exiting so the supervisor restarts the router")
            os._exit(EXIT_AGENT_FAILED)

    # -- agents ------------------------------------------------------------------------

    async def _catalog_agent(self, stream: StreamT[bytes]) -> None:
        await self._guarded(stream, self._on_product)

    async def _on_product(self, event: EventT[bytes]) -> None:
        product = decode(event.value, "catalog")
        assert isinstance(product, ProductEvent)
        if product.deleted:
            self.products.pop(product.product_id, None)
            return
        is_new = self.products.get(product.product_id) is None
        self.products[product.product_id] = product.to_json().decode()
        if is_new and self.settings.router.auto_cc:
            request = cc_request_for_product(product)
            if request is not None:
                await self._emit_request(request)

    async def _reviews_agent(self, stream: StreamT[bytes]) -> None:
        await self._guarded(stream, self._on_review)

    async def _on_review(self, event: EventT[bytes]) -> None:
        review = decode(event.value, "reviews")
        assert isinstance(review, ReviewEvent)
        recent = [r for r in self.reviews_of(review.product_id) if r.review_id != review.review_id]
        recent = [*recent, review][-self.settings.router.recent_reviews :]
        self.recent_reviews[review.product_id] = orjson.dumps(
            [r.model_dump(mode="json") for r in recent]
        ).decode()
        if self.settings.router.auto_sa:
            await self._emit_request(sa_request_for_review(review))

    async def _queries_agent(self, stream: StreamT[bytes]) -> None:
        await self._guarded(stream, self._on_query)

    async def _on_query(self, event: EventT[bytes]) -> None:
        query = decode(event.value, "queries")
        msg = event.message
        seen = now()
        await self._resolve_or_wait(
            event,
            query,  # type: ignore[arg-type]
            WaitingQuery(
                query=event.value.decode(),
                source_topic=msg.topic,
                source_partition=msg.partition,
                source_offset=msg.offset,
                first_seen=seen,
                deadline=seen + self.settings.router.product_wait_s,
                not_before=seen + self.settings.router.retry_interval_s,
            ),
        )

    async def _resolve_or_wait(
        self, event: EventT[bytes], query: QueryEvent, waiting: WaitingQuery
    ) -> None:
        try:
            request = resolve(query, self.product, self.reviews_of)
        except MissingData as exc:
            if now() >= waiting.deadline:
                waited = now() - waiting.first_seen
                raw = waiting.query.encode()
                await self._dead_letter(
                    event,
                    ErrorKind.UNKNOWN_PRODUCT,
                    f"{exc.what} (waited {waited:.1f}s, {waiting.attempts} retries; "
                    f"origin {waiting.source_topic}[{waiting.source_partition}]"
                    f"@{waiting.source_offset})",
                    raw=raw,
                )
                return
            again = waiting.model_copy(
                update={
                    "attempts": waiting.attempts + 1,
                    "not_before": now() + self.settings.router.retry_interval_s,
                }
            )
            await self._send(
                self.waiting,
                query.request_id,
                orjson.dumps(again.model_dump()),
                f"{query.request_id}:wait:{again.attempts}",
            )
            return
        await self._emit_request(request)

    async def _waiting_agent(self, stream: StreamT[bytes]) -> None:
        await self._guarded(stream, self._on_waiting)

    async def _on_waiting(self, event: EventT[bytes]) -> None:
        waiting = WaitingQuery.model_validate_json(event.value)
        delay = waiting.not_before - now()
        if delay > 0:
            await asyncio.sleep(delay)
        query = decode(waiting.query.encode(), "queries")
        await self._resolve_or_wait(event, query, waiting)  # type: ignore[arg-type]


def input_lag(settings: Settings) -> int:
    """Records on the router's inputs past its group's committed offsets (blocking)."""
    from streams.lag import group_lag

    return group_lag(settings, f"{settings.topic_prefix}router", INPUTS).lag


async def watch_for_stall(router: Router, health: Health) -> None:
    """Exit 70 when records wait but none was handled for ``stall_timeout_s``."""
    timeout = router.settings.router.stall_timeout_s
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(min(10.0, timeout / 3))
        idle = time.monotonic() - router.handled_at
        if idle < timeout:
            continue
        try:
            lag = await loop.run_in_executor(None, input_lag, router.settings)
        except Exception as exc:  # broker away: not a stall of ours
            log.warning("stall check could not read the lag: %s", exc)
            continue
        if lag > 0 and time.monotonic() - router.handled_at >= timeout:
            reason = f"{lag} records wait and none was handled for {idle:.0f}s"
            health.failed(f"stalled: {reason}")
            log.error("router stalled (%s); exiting so the supervisor restarts it", reason)
            os._exit(EXIT_AGENT_FAILED)


def run_router(settings: Settings, loglevel: str = "info") -> None:
    """Run the router as a faust worker until SIGTERM/SIGINT (blocks, then exits)."""
    from faust.worker import Worker

    from streams.clients import wait_for_broker
    from streams.health import serve

    router = Router(settings)
    health = Health(lambda: wait_for_broker(settings, timeout=2.0))
    if settings.metrics_port:
        serve(health, settings.metrics_port)
        log.info("metrics and health on :%d (/metrics /healthz /readyz)", settings.metrics_port)

    async def started() -> None:
        health.models_loaded()

    router.app.task(started)  # runs once the app's services (tables, agents) are up
    if settings.router.stall_timeout_s:

        async def stall_watch() -> None:
            await watch_for_stall(router, health)

        router.app.task(stall_watch)

    worker = Worker(router.app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()

"""The router's stages on decoded records (no broker: the runner and the follower are
covered by tests/streams/router/test_router_kafka.py)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import orjson
import pytest
from pydantic import BaseModel

from schemas.base import now
from schemas.dlq import ErrorKind
from schemas.events import ProductEvent, ReviewEvent, parse_query
from schemas.router import RecentReviews, WaitingQuery
from streams.config import RouterSettings
from streams.router.stages import RouterStage, RouterTables, WaitingStage
from streams.router.tables import Table
from streams.stage import Emit, Inbound, Output, Reject, Result, WarmingStage


class RestoredFollower:
    """Stands in for the changelog follower: the tables start empty and restored."""

    def __init__(self, restored: bool = True) -> None:
        self.restored = threading.Event()
        if restored:
            self.restored.set()

    def wait_restored(self, timeout: float) -> bool:
        return self.restored.wait(timeout)


def _inbound(topic: str, value: BaseModel, offset: int = 0) -> Inbound:
    raw = orjson.dumps(value.model_dump(mode="json", exclude_none=True))
    return Inbound(f"caslie.{topic}", 0, offset, None, value, raw)


def _product(pid: str, **extra: object) -> Inbound:
    return _inbound("catalog", ProductEvent.model_validate({"product_id": pid, **extra}))


def _query(**fields: object) -> Inbound:
    return _inbound("queries", parse_query(fields))


def _outputs(result: Result) -> list[Output]:
    assert isinstance(result, Emit), result
    return result.outputs


def _router(**settings: object) -> tuple[RouterStage, WaitingStage, RouterTables]:
    tables = RouterTables()
    follower = RestoredFollower()
    config = RouterSettings.model_validate(settings)
    return (
        RouterStage(tables, follower, config),  # type: ignore[arg-type]
        WaitingStage(tables, follower, config),  # type: ignore[arg-type]
        tables,
    )


def test_a_query_right_behind_its_product_in_the_same_batch_resolves() -> None:
    router, _, tables = _router()
    results = router.process(
        [
            _product("p1", title="Steel mug"),
            _query(request_id="r1", task="PSI", product_id="p1", query="mug"),
        ]
    )
    changelog, request = _outputs(results[0]), _outputs(results[1])
    assert [(o.logical_topic, o.key) for o in changelog] == [("router.products", "p1")]
    assert [(o.logical_topic, o.key, o.dedupe_id) for o in request] == [
        ("requests", "r1", "r1:router")
    ]
    assert tables.product("p1") is not None


def test_auto_cc_fires_for_a_new_product_only() -> None:
    router, _, tables = _router(auto_cc=True)
    first = router.process([_product("p1", title="Mug", category_options=["Mugs", "Cups"])])
    again = router.process([_product("p1", title="Mug 2", category_options=["Mugs", "Cups"])])
    assert [o.key for o in _outputs(first[0])] == ["p1", "auto-cc:p1"]
    assert [o.logical_topic for o in _outputs(again[0])] == ["router.products"]
    product = tables.product("p1")
    assert product is not None and product.title == "Mug 2"
    # the two versions have different dedupe ids; a repeat of the same version the same one
    assert _outputs(first[0])[0].dedupe_id != _outputs(again[0])[0].dedupe_id
    repeat = router.process([_product("p1", title="Mug 2", category_options=["Mugs", "Cups"])])
    assert _outputs(repeat[0])[0].dedupe_id == _outputs(again[0])[0].dedupe_id


def test_a_deleted_product_leaves_the_table_and_its_deletion_is_logged() -> None:
    router, _, tables = _router()
    router.process([_product("p1", title="Mug")])
    [result] = router.process([_product("p1", title="Mug", deleted=True)])
    [out] = _outputs(result)
    assert out.logical_topic == "router.products"
    assert isinstance(out.value, ProductEvent) and out.value.deleted
    assert tables.product("p1") is None


def test_reviews_keep_the_latest_per_product_without_repeats() -> None:
    router, _, tables = _router(recent_reviews=2, auto_sa=True)
    reviews = [
        ReviewEvent(review_id=f"rv{i}", product_id="p1", text=f"review {i}") for i in (1, 2, 2, 3)
    ]
    results = router.process([_inbound("reviews", r) for r in reviews])
    last = _outputs(results[-1])
    assert [o.logical_topic for o in last] == ["router.reviews", "requests"]
    assert isinstance(last[0].value, RecentReviews)
    assert [r.review_id for r in last[0].value.reviews] == ["rv2", "rv3"]
    assert [r.review_id for r in tables.reviews_of("p1")] == ["rv2", "rv3"]
    assert last[1].key == "auto-sa:rv3"


def test_a_query_for_an_unknown_product_waits_then_resolves() -> None:
    router, waiting_stage, _ = _router(product_wait_s=30, retry_interval_s=0.05)
    [result] = router.process([_query(request_id="r1", task="MPC", product_id="p9", query="q")])
    [waiting] = _outputs(result)
    assert (waiting.logical_topic, waiting.key, waiting.dedupe_id) == (
        "queries.waiting",
        "r1",
        "r1:wait:1",
    )
    assert isinstance(waiting.value, WaitingQuery) and waiting.value.attempts == 1
    parked = _inbound("queries.waiting", waiting.value)

    # not there yet: it waits again, one attempt later
    [again] = waiting_stage.process([parked])
    [out] = _outputs(again)
    assert out.logical_topic == "queries.waiting" and out.dedupe_id == "r1:wait:2"

    router.process([_product("p9", title="Late mug")])
    [resolved] = waiting_stage.process([_inbound("queries.waiting", out.value)])
    [request] = _outputs(resolved)
    assert request.logical_topic == "requests" and request.key == "r1"


def test_a_query_past_its_deadline_is_rejected_with_how_long_it_waited() -> None:
    router, waiting_stage, _ = _router(product_wait_s=0)
    [result] = router.process([_query(request_id="r1", task="MPC", product_id="p9", query="q")])
    assert isinstance(result, Reject) and result.kind == ErrorKind.UNKNOWN_PRODUCT
    assert "unknown product(s): p9" in result.message and "waited" in result.message

    overdue = WaitingQuery(
        query='{"request_id": "r2", "task": "PSI", "product_id": "p8", "query": "q"}',
        source_topic="caslie.queries",
        source_partition=3,
        source_offset=41,
        first_seen=now() - 40,
        deadline=now() - 10,
        not_before=now() - 9,
        attempts=30,
    )
    [late] = waiting_stage.process([_inbound("queries.waiting", overdue)])
    assert isinstance(late, Reject) and late.kind == ErrorKind.UNKNOWN_PRODUCT
    assert "30 retries" in late.message and "caslie.queries[3]@41" in late.message


def test_one_failing_record_is_rejected_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    router, _, tables = _router(auto_cc=True)

    def broken(product: ProductEvent) -> None:
        if product.product_id == "p2":
            raise RuntimeError("boom")

    monkeypatch.setattr("streams.router.stages.cc_request_for_product", broken)
    batch: Sequence[Inbound] = [
        _product("p1", title="Mug"),
        _product("p2", title="Cup"),
        _query(request_id="r1", task="PSI", product_id="p1", query="mug"),
    ]
    results = router.process(batch)
    assert isinstance(results[0], Emit) and isinstance(results[2], Emit)
    assert isinstance(results[1], Reject) and results[1].kind == ErrorKind.PROCESSING
    assert "boom" in results[1].message
    assert tables.product("p2") is None, "a failed record changes no table"


def test_the_stages_warm_up_until_the_tables_are_restored() -> None:
    tables = RouterTables()
    follower = RestoredFollower(restored=False)
    stage = RouterStage(tables, follower, RouterSettings())  # type: ignore[arg-type]
    assert isinstance(stage, WarmingStage)
    assert not stage.ready(0.01)
    follower.restored.set()
    assert stage.ready(0.01)


def test_table_keeps_only_what_passes_its_filter() -> None:
    table: Table[ProductEvent] = Table("router.products", lambda p: not p.deleted)
    table.put("p1", ProductEvent(product_id="p1", title="a"))
    assert len(table) == 1
    table.put("p1", ProductEvent(product_id="p1", title="a", deleted=True))
    assert table.get("p1") is None and len(table) == 0

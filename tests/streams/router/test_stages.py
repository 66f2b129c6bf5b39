"""The router's stages on decoded records (no broker: the runner and the follower are
covered by tests/streams/router/test_router_kafka.py)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Message
from pydantic import BaseModel

from schemas.base import SCHEMA_VERSION, now
from schemas.dlq import ErrorKind
from schemas.events import ClaimEvent, ProductEvent, ReviewEvent, parse_query
from schemas.records import PredictionFailure, TaskRequest, parse_prediction
from schemas.router import RecentReviews, WaitingQuery
from schemas.tasks.registry import get_task
from streams.codec import TOMBSTONE, Tombstone, decode, encode
from streams.config import RouterSettings, Settings
from streams.dlq import Failure
from streams.router.stages import RouterStage, RouterTables, WaitingStage
from streams.router.store import StateStore
from streams.stage import Emit, Inbound, Output, Reject, Result, WarmingStage
from streams.topics import topic_name
from tests.support.memory_broker import MemoryBroker, MemoryClients
from tests.support.memory_runner import Running, make_runner, memory_settings, wait_until


class RestoredFollower:
    """Stands in for the changelog follower: the tables start empty and restored."""

    def __init__(self, restored: bool = True) -> None:
        self.restored = threading.Event()
        if restored:
            self.restored.set()

    def wait_restored(self, timeout: float) -> bool:
        return self.restored.wait(timeout)


_offsets = iter(range(10**9))


def _inbound(topic: str, value: BaseModel, offset: int | None = None) -> Inbound:
    """A decoded record; each one at its own offset unless told (a redelivery)."""
    raw = orjson.dumps(value.model_dump(mode="json", exclude_none=True))
    at = next(_offsets) if offset is None else offset
    return Inbound(f"caslie.{topic}", 0, at, None, value, raw)


def _changelog_record(out: Output, offset: int) -> Message:
    """The record the follower reads back for an output of the router."""
    value = None if isinstance(out.value, Tombstone) else encode(out.value)
    return Message(
        topic=f"caslie.{out.logical_topic}",
        partition=0,
        offset=offset,
        key=out.key.encode(),
        value=value,
        headers=[("caslie-id", out.dedupe_id.encode())],
    )


def _product(pid: str, **extra: object) -> Inbound:
    return _inbound("catalog", ProductEvent.model_validate({"product_id": pid, **extra}))


def _query(**fields: object) -> Inbound:
    return _inbound("queries", parse_query(fields))


def _outputs(result: Result) -> list[Output]:
    assert isinstance(result, Emit), result
    return result.outputs


def _tables(tmp_path: Path) -> RouterTables:
    return RouterTables(StateStore(tmp_path / "state", RouterSettings()))


def _router(tmp_path: Path, **settings: object) -> tuple[RouterStage, WaitingStage, RouterTables]:
    tables = _tables(tmp_path)
    follower = RestoredFollower()
    config = RouterSettings.model_validate(settings)
    return (
        RouterStage(tables, follower, config),  # type: ignore[arg-type]
        WaitingStage(tables, follower, config),  # type: ignore[arg-type]
        tables,
    )


def test_a_query_right_behind_its_product_in_the_same_batch_resolves(tmp_path: Path) -> None:
    router, _, tables = _router(tmp_path)
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


def test_auto_cc_fires_for_a_new_product_only(tmp_path: Path) -> None:
    router, _, tables = _router(tmp_path, auto_cc=True)
    first = router.process([_product("p1", title="Mug", category_options=["Mugs", "Cups"])])
    again = router.process([_product("p1", title="Mug 2", category_options=["Mugs", "Cups"])])
    assert [o.key for o in _outputs(first[0])] == ["p1", "auto-cc:p1"]
    assert [o.logical_topic for o in _outputs(again[0])] == ["router.products"]
    product = tables.product("p1")
    assert product is not None and product.title == "Mug 2"
    # one dedupe id per input record: a redelivery of it has the same one
    assert _outputs(first[0])[0].dedupe_id != _outputs(again[0])[0].dedupe_id
    item = _product("p1", title="Mug 3")
    assert _outputs(router.process([item])[0]) == _outputs(router.process([item])[0])


def test_the_tables_keep_only_what_resolution_reads(tmp_path: Path) -> None:
    router, _, tables = _router(tmp_path, auto_cc=True)
    images = [{"url": f"https://cdn.example/{i}.png"} for i in range(3)]
    [result] = router.process(
        [
            _product(
                "p1",
                title="Mug",
                brand="Acme",
                description="x" * 50_000,
                images=images,
                category_options=["Mugs", "Cups"],
            )
        ]
    )
    changelog, auto_cc = _outputs(result)
    assert changelog.value == ProductEvent(
        product_id="p1", title="Mug", brand="Acme", description="x" * 1000, images=images[:1]
    )
    assert auto_cc.value.options == ["A: Mugs", "B: Cups"]  # type: ignore[attr-defined]
    assert tables.product("p1") == changelog.value


def test_a_deleted_product_leaves_the_table_and_its_changelog_gets_a_tombstone(
    tmp_path: Path,
) -> None:
    router, _, tables = _router(tmp_path)
    router.process([_product("p1", title="Mug"), _product("p2", title="Cup")])
    null = Inbound("caslie.catalog", 0, 7, b"p1", TOMBSTONE, b"")
    older_form = _product("p2", title="Cup", deleted=True)
    results = router.process([null, older_form])
    for result, pid in zip(results, ("p1", "p2"), strict=True):
        [out] = _outputs(result)
        assert (out.logical_topic, out.key, out.value) == ("router.products", pid, TOMBSTONE)
        assert tables.product(pid) is None
    [keyless] = router.process([Inbound("caslie.catalog", 0, 8, None, TOMBSTONE, b"")])
    assert isinstance(keyless, Reject) and keyless.kind == ErrorKind.SCHEMA


def test_the_follower_replaying_an_older_change_loses_no_review(tmp_path: Path) -> None:
    """rv1, rv2; the follower applies rv1's changelog record; rv3: all three are kept."""
    router, _, tables = _router(tmp_path, recent_reviews=5)
    follower = tables.follower(Settings())
    reviews = [ReviewEvent(review_id=f"rv{i}", product_id="p1", text=f"t{i}") for i in (1, 2, 3)]
    [[first], [second]] = [
        _outputs(r)
        for r in router.process([_inbound("reviews", reviews[0]), _inbound("reviews", reviews[1])])
    ]
    follower.apply([_changelog_record(first, 0)])
    [[third]] = [_outputs(r) for r in router.process([_inbound("reviews", reviews[2])])]
    assert [r.review_id for r in tables.reviews_of("p1")] == ["rv1", "rv2", "rv3"]
    # once the follower has read everything back, the store alone holds the same
    follower.apply([_changelog_record(second, 1), _changelog_record(third, 2)])
    assert tables.reviews.pending == 0
    assert [r.review_id for r in tables.reviews_of("p1")] == ["rv1", "rv2", "rv3"]


def test_the_follower_applies_tombstones_and_the_older_delete_form(tmp_path: Path) -> None:
    tables = _tables(tmp_path)
    follower = tables.follower(Settings())
    mug = Output("router.products", "p1", ProductEvent(product_id="p1", title="Mug"), "a")
    cup = Output("router.products", "p2", ProductEvent(product_id="p2", title="Cup"), "b")
    old = ProductEvent(product_id="p2", title="Cup", deleted=True)
    follower.apply([_changelog_record(mug, 0), _changelog_record(cup, 1)])
    assert tables.product("p1") is not None and tables.product("p2") is not None
    follower.apply(
        [
            _changelog_record(Output("router.products", "p1", TOMBSTONE, "c"), 2),
            _changelog_record(Output("router.products", "p2", old, "d"), 3),
        ]
    )
    assert tables.product("p1") is None and tables.product("p2") is None
    assert tables.store.positions() == {("caslie.router.products", 0): 4}


def test_reviews_keep_the_latest_per_product_without_repeats(tmp_path: Path) -> None:
    router, _, tables = _router(tmp_path, recent_reviews=2, auto_sa=True)
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


def test_a_query_for_an_unknown_product_waits_then_resolves(tmp_path: Path) -> None:
    router, waiting_stage, _ = _router(tmp_path, product_wait_s=30, retry_interval_s=0.05)
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


def test_a_query_past_its_deadline_is_rejected_saying_what_never_arrived(tmp_path: Path) -> None:
    router, waiting_stage, _ = _router(tmp_path, product_wait_s=0)
    [result] = router.process([_query(request_id="r1", task="MPC", product_id="p9", query="q")])
    assert isinstance(result, Reject) and result.kind == ErrorKind.UNKNOWN_PRODUCT
    assert result.message.startswith("product(s) p9 never arrived within 0s")

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
    assert "product(s) p8 never arrived" in late.message


def _rejected_catalog_record(router: RouterStage, pid: str, offset: int) -> list[Output]:
    raw = orjson.dumps({"product_id": pid, "images": [{"url": "gopher://x/a.png"}]})
    failure = Failure(
        "caslie.catalog", 0, offset, pid.encode(), raw, ErrorKind.SCHEMA, "scheme 'gopher'"
    )
    return list(router.dead_lettered("catalog", failure))


def test_a_query_naming_a_rejected_product_fails_at_once_with_the_reason(tmp_path: Path) -> None:
    router, waiting_stage, tables = _router(tmp_path, product_wait_s=60)
    [marker] = _rejected_catalog_record(router, "k2", 5)
    assert (marker.logical_topic, marker.key) == ("router.rejected", "k2")
    [result] = router.process([_query(request_id="r1", task="PSI", product_id="k2", query="q")])
    assert isinstance(result, Reject) and result.kind == ErrorKind.UNKNOWN_PRODUCT
    assert result.message == "product k2 was rejected: scheme 'gopher'"

    # a query that was waiting before the rejection fails on its next try, not at its deadline
    waiting = WaitingQuery(
        query='{"request_id": "r2", "task": "PSI", "product_id": "k2", "query": "q"}',
        source_topic="caslie.queries",
        source_partition=0,
        source_offset=1,
        first_seen=now(),
        deadline=now() + 60,
        not_before=now(),
    )
    [late] = waiting_stage.process([_inbound("queries.waiting", waiting)])
    assert isinstance(late, Reject) and "product k2 was rejected" in late.message

    # a later valid upsert deletes the marker and the product resolves
    upsert = _outputs(router.process([_product("k2", title="Mug")])[0])
    changes = [(o.logical_topic, o.key, o.value) for o in upsert]
    assert ("router.rejected", "k2", TOMBSTONE) in changes
    assert tables.rejected.get("k2") is None
    [again] = router.process([_query(request_id="r3", task="PSI", product_id="k2", query="q")])
    assert [o.logical_topic for o in _outputs(again)] == ["requests"]


def test_only_catalog_records_with_a_product_id_are_remembered_as_rejected(
    tmp_path: Path,
) -> None:
    router, _, tables = _router(tmp_path)
    review = Failure("caslie.reviews", 0, 1, b"p1", b"{}", ErrorKind.SCHEMA, "bad")
    garbage = Failure("caslie.catalog", 0, 2, None, b"\xff", ErrorKind.UNDECODABLE, "bad")
    assert list(router.dead_lettered("reviews", review)) == []
    assert list(router.dead_lettered("catalog", garbage)) == []
    assert tables.rejected.all_keys() == []


def test_one_failing_record_is_rejected_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    router, _, tables = _router(tmp_path, auto_cc=True)

    def broken(product: ProductEvent) -> None:
        if product.product_id == "p2":
            raise RuntimeError("boom")

    monkeypatch.setattr(type(get_task("CC")), "for_product", lambda _self, p: broken(p))
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


def test_the_stages_warm_up_until_the_tables_are_restored(tmp_path: Path) -> None:
    tables = _tables(tmp_path)
    follower = RestoredFollower(restored=False)
    stage = RouterStage(tables, follower, RouterSettings())  # type: ignore[arg-type]
    assert isinstance(stage, WarmingStage)
    assert not stage.ready(0.01)
    follower.restored.set()
    assert stage.ready(0.01)


def test_the_store_keeps_tables_and_positions_across_a_reopen(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state", RouterSettings())
    store.write(
        [("router.products", "p1", b"one"), ("router.reviews", "p1", b"two")],
        {("t.router.products", 1): 5},
    )
    store.write([("router.products", "p1", None)], {("t.router.products", 1): 6})
    store.close()
    again = StateStore.open(tmp_path / "state", RouterSettings())
    assert again.get("router.products", "p1") is None
    assert again.get("router.reviews", "p1") == b"two"
    assert again.positions() == {("t.router.products", 1): 6}
    again.clear()
    assert again.positions() == {} and again.get("router.reviews", "p1") is None
    again.close()


def test_an_unreadable_state_folder_is_started_anew(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    (folder / "CURRENT").write_text("MANIFEST-999999\n")  # names a manifest that is not there
    store = StateStore.open(folder, RouterSettings())
    assert store.positions() == {}
    store.close()


def _claim(cid: str, pid: str, **extra: object) -> Inbound:
    fields = {
        "claim_id": cid,
        "product_id": pid,
        "text": "The box arrived torn and the bottle leaked.",
        "images": [{"url": f"https://cdn.example/{cid}.png"}],
        **extra,
    }
    return _inbound("claims", ClaimEvent.model_validate(fields))


def test_a_claim_asks_the_claim_tasks_against_the_listing(tmp_path: Path) -> None:
    router, _, tables = _router(tmp_path, attribute_keys=["Brand", "Size"])
    listing = _product(
        "p1",
        title="Acme shampoo 500 ml",
        description="For dry hair.",
        images=[{"url": "https://cdn.example/p1.png"}],
    )
    [_, result] = router.process([listing, _claim("c1", "p1")])
    outputs = _outputs(result)
    assert [(o.logical_topic, o.key) for o in outputs] == [
        ("router.claims", "c1"),
        ("requests", "auto-dd:c1"),
        ("requests", "auto-pm:c1"),
        ("requests", "auto-ae:c1"),
    ]
    dd, pm, ae = (o.value for o in outputs[1:])
    assert (
        isinstance(dd, TaskRequest) and isinstance(pm, TaskRequest) and isinstance(ae, TaskRequest)
    )
    assert [s.slot for s in dd.slots] == ["claim/0"]
    assert [s.slot for s in pm.slots] == ["claim/0", "reference"], "PM compares with the listing"
    assert pm.inputs["listing"] == "Acme shampoo 500 ml. For dry hair."
    assert ae.options == ["Brand", "Size"], "router.attribute_keys names AE's keys"
    assert tables.claim("c1") is not None


def test_a_claim_before_its_listing_waits_like_a_query(tmp_path: Path) -> None:
    router, waiting, _ = _router(tmp_path, claim_tasks=["DD"], retry_interval_s=0.01)
    [result] = router.process([_claim("c2", "p9")])
    claim_out, wait_out = _outputs(result)
    assert claim_out.logical_topic == "router.claims"
    assert (wait_out.logical_topic, wait_out.key) == ("queries.waiting", "auto-dd:c2")
    router.process([_product("p9", title="Zenleaf tea")])
    [again] = waiting.process([_inbound("queries.waiting", wait_out.value)])
    [request] = _outputs(again)
    assert (request.logical_topic, request.key) == ("requests", "auto-dd:c2")


def test_a_claim_query_names_an_unknown_claim(tmp_path: Path) -> None:
    router, _, _ = _router(tmp_path)
    [result] = router.process([_query(request_id="q1", task="DD", claim_id="nope")])
    [out] = _outputs(result)
    assert out.logical_topic == "queries.waiting", "the claim may still arrive"


def test_a_claim_is_kept_even_when_its_listing_may_not_be_waited_for(tmp_path: Path) -> None:
    router, waiting, tables = _router(tmp_path, claim_tasks=["DD"], product_wait_s=0)
    [result] = router.process([_claim("c3", "p404")])
    _, wait_out = _outputs(result)
    assert tables.claim("c3") is not None and wait_out.logical_topic == "queries.waiting"
    [given_up] = waiting.process([_inbound("queries.waiting", wait_out.value)])
    assert isinstance(given_up, Reject) and given_up.kind == ErrorKind.UNKNOWN_PRODUCT
    assert "p404" in given_up.message


def test_a_resent_claim_is_not_asked_again(tmp_path: Path) -> None:
    router, _, _ = _router(tmp_path, claim_tasks=["DD"])
    router.process([_product("p1", title="Acme tea")])
    [first] = router.process([_claim("c4", "p1")])
    [again] = router.process([_claim("c4", "p1", text="Still torn.")])
    assert [o.logical_topic for o in _outputs(first)] == ["router.claims", "requests"]
    assert [o.logical_topic for o in _outputs(again)] == ["router.claims"]


def test_the_deployments_attribute_keys_reach_a_users_ae_query(tmp_path: Path) -> None:
    router, _, _ = _router(tmp_path, claim_tasks=[], attribute_keys=["Brand"])
    router.process([_product("p1", title="Acme tea"), _claim("c5", "p1")])
    [result] = router.process([_query(request_id="q5", task="AE", claim_id="c5")])
    [request] = _outputs(result)
    assert request.value.options == ["Brand"]  # type: ignore[attr-defined]


def test_claim_tasks_and_attribute_keys_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown task 'DX'"):
        RouterSettings(claim_tasks=["DD", "DX"])
    with pytest.raises(ValueError, match="repeat"):
        RouterSettings(attribute_keys=["Brand", "Brand"])


def _decoded(topic: str, fields: dict[str, object]) -> Inbound:
    """A record as the runner hands it on: bytes decoded by the codec."""
    raw = orjson.dumps(fields)
    return Inbound(f"caslie.{topic}", 0, next(_offsets), None, decode(raw, topic), raw)


def test_records_from_a_future_version_are_read_and_passed_on_whole(tmp_path: Path) -> None:
    router, _, tables = _router(tmp_path, claim_tasks=["DD"], product_wait_s=30)
    future = {"version": SCHEMA_VERSION + 1, "gift_wrap": {"paper": "red"}}
    product = {"product_id": "p1", "title": "Mug", "images": [{"url": "https://c.example/m.png"}]}
    claim: dict[str, object] = {"claim_id": "c1", "product_id": "p1", "text": "It cracked."}
    claim["images"] = [{"url": "https://c.example/c.png"}]
    query = {"request_id": "r1", "task": "PSI", "product_id": "p1", "query": "mug"}
    late = {"request_id": "r2", "task": "MPC", "product_id": "p9", "query": "tea"}
    results = router.process(
        [
            _decoded("catalog", {**product, **future}),
            _decoded("claims", {**claim, **future}),
            _decoded("queries", {**query, **future}),
            _decoded("queries", {**late, **future}),
        ]
    )
    [stored_claim, _dd] = _outputs(results[1])
    [request] = _outputs(results[2])
    [waiting] = _outputs(results[3])
    assert tables.product("p1") is not None and tables.product("p1").title == "Mug"  # type: ignore[union-attr]
    assert isinstance(request.value, TaskRequest) and request.value.inputs["title"] == "Mug"
    # what the router passes on unchanged keeps the fields it does not know
    assert orjson.loads(encode(stored_claim.value))["gift_wrap"] == {"paper": "red"}
    assert isinstance(waiting.value, WaitingQuery)
    assert orjson.loads(waiting.value.query)["gift_wrap"] == {"paper": "red"}


def test_on_the_runner_a_rejected_product_s_queries_end_with_the_true_reason(
    tmp_path: Path,
) -> None:
    settings = memory_settings("exactly_once")
    router, _, _ = _router(tmp_path, product_wait_s=0)
    broker = MemoryBroker()
    gopher = b'{"product_id": "k2", "title": "Mug", "images": [{"url": "gopher://h/a.png"}]}'
    catalog, queries = topic_name(settings, "catalog"), topic_name(settings, "queries")
    broker.append(catalog, gopher, key=b"k2")
    with Running(make_runner(router, settings, MemoryClients(broker), "router")):
        wait_until(lambda: broker.committed_offset("router", catalog) == 1, "product rejected")
        for rid, pid in (("r1", "k2"), ("r2", "k3")):
            query = {"request_id": rid, "task": "PSI", "product_id": pid, "query": "mug"}
            broker.append(queries, orjson.dumps(query), key=rid.encode())
        wait_until(lambda: broker.committed_offset("router", queries) == 2, "queries done")
    by_id = {
        key: parse_prediction(value)
        for key, value, _ in broker.keyed(topic_name(settings, "predictions"))
    }
    assert set(by_id) == {b"r1", b"r2"}
    rejected, never = by_id[b"r1"], by_id[b"r2"]
    assert isinstance(rejected, PredictionFailure) and isinstance(never, PredictionFailure)
    assert rejected.reason.startswith("product k2 was rejected: ")
    assert "image url scheme 'gopher'" in rejected.reason
    assert never.reason.startswith("product(s) k3 never arrived within 0s")
    assert {rejected.stage, rejected.error_kind} == {"router", "unknown_product"}
    [(key, marker, _)] = broker.keyed(topic_name(settings, "router.rejected"))
    assert key == b"k2" and b"gopher" in marker


def test_on_the_runner_a_query_whose_product_never_comes_fails_after_the_wait(
    tmp_path: Path,
) -> None:
    settings = memory_settings("at_least_once")
    router, waiting_stage, _ = _router(tmp_path, product_wait_s=0.3, retry_interval_s=0.05)
    query = {"request_id": "r1", "task": "PSI", "product_id": "k9", "query": "mug"}
    queries, waiting = topic_name(settings, "queries"), topic_name(settings, "queries.waiting")
    predictions = topic_name(settings, "predictions")
    started = now()
    # the memory broker has one group member at a time: the router's stages run one by one
    first = MemoryBroker()
    first.append(queries, orjson.dumps(query), key=b"r1")
    with Running(make_runner(router, settings, MemoryClients(first), "router")):
        wait_until(lambda: bool(first.values(waiting)), "the query waits")
    assert first.values(predictions) == []
    broker = MemoryBroker()
    for key, value, _ in first.keyed(waiting):
        broker.append(waiting, value, key=key)
    with Running(make_runner(waiting_stage, settings, MemoryClients(broker), "router.waiting")):
        wait_until(lambda: bool(broker.values(predictions)), "the failure")
    [(key, value, dedupe)] = broker.keyed(predictions)
    failure = parse_prediction(value)
    assert isinstance(failure, PredictionFailure) and (key, dedupe) == (b"r1", "r1:failed")
    assert failure.stage == "router.waiting"
    assert failure.reason.startswith("product(s) k9 never arrived within 0.3s")
    assert failure.failed_at - started >= 0.3
    assert len(broker.values(topic_name(settings, "queries.waiting"))) >= 2  # it did wait

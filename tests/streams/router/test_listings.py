"""The router's listings and aspect schemas (OPAL's LG): kept in their tables, LG asked of
each new listing, a listing waiting for its category's schema (no broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.dlq import ErrorKind
from schemas.events import AspectSchemaEvent, ListingEvent
from schemas.records import TaskRequest
from streams.config import RouterSettings
from streams.stage import Reject
from tests.streams.router.test_stages import _inbound, _outputs, _query, _router


def _listing(lid: str, category: str = "womens-shoes", **extra: object) -> object:
    images = [{"url": f"https://cdn.example/{lid}.jpg"}]
    fields = {"listing_id": lid, "category": category, "images": images, **extra}
    return _inbound("listings", ListingEvent.model_validate(fields))


def _schema(category: str, *names: str) -> object:
    aspects = [{"name": n, "required": i == 0} for i, n in enumerate(names)]
    return _inbound(
        "aspect_schemas",
        AspectSchemaEvent.model_validate({"category": category, "aspects": aspects}),
    )


def test_a_new_listing_asks_lg_against_its_category_schema(tmp_path: Path) -> None:
    router, _, tables = _router(tmp_path)
    schema_result, listing_result = router.process(
        [_schema("womens-shoes", "Brand", "Colour"), _listing("l1", seller_text="Worn once.")]
    )
    assert [(o.logical_topic, o.key) for o in _outputs(schema_result)] == [
        ("router.aspect_schemas", "womens-shoes")
    ]
    outputs = _outputs(listing_result)
    assert [(o.logical_topic, o.key) for o in outputs] == [
        ("router.listings", "l1"),
        ("requests", "auto-lg:l1"),
    ]
    request = outputs[1].value
    assert isinstance(request, TaskRequest) and request.task == "LG"
    assert request.options == ["Brand", "Colour"]
    assert request.inputs["seller_text"] == "Worn once."
    assert tables.listing("l1") is not None and tables.aspect_schema("womens-shoes") is not None


def test_a_listing_before_its_schema_waits_then_resolves(tmp_path: Path) -> None:
    router, waiting, _ = _router(tmp_path, retry_interval_s=0.01)
    [result] = router.process([_listing("l2", "mens-boots")])
    listing_out, wait_out = _outputs(result)
    assert listing_out.logical_topic == "router.listings"
    assert (wait_out.logical_topic, wait_out.key) == ("queries.waiting", "auto-lg:l2")
    router.process([_schema("mens-boots", "Brand")])
    [again] = waiting.process([_inbound("queries.waiting", wait_out.value)])
    [request] = _outputs(again)
    assert (request.logical_topic, request.key) == ("requests", "auto-lg:l2")


def test_a_listing_whose_schema_never_comes_goes_to_the_dlq_saying_so(tmp_path: Path) -> None:
    router, waiting, _ = _router(tmp_path, product_wait_s=0)
    [result] = router.process([_listing("l3", "garden-gnomes")])
    _, wait_out = _outputs(result)
    [given_up] = waiting.process([_inbound("queries.waiting", wait_out.value)])
    assert isinstance(given_up, Reject) and given_up.kind == ErrorKind.UNKNOWN_PRODUCT
    assert "no aspect schema for category 'garden-gnomes'" in given_up.message


def test_a_schema_update_applies_to_later_listings_and_a_resent_listing_is_not_asked_again(
    tmp_path: Path,
) -> None:
    router, _, _ = _router(tmp_path)
    router.process([_schema("bags", "Brand")])
    [first] = router.process([_listing("l4", "bags")])
    router.process([_schema("bags", "Brand", "Material")])
    [later, resent] = router.process([_listing("l5", "bags"), _listing("l4", "bags")])
    assert _outputs(first)[1].value.options == ["Brand"]  # type: ignore[attr-defined]
    assert _outputs(later)[1].value.options == ["Brand", "Material"]  # type: ignore[attr-defined]
    assert [o.logical_topic for o in _outputs(resent)] == ["router.listings"]


def test_a_users_lg_query_and_no_listing_tasks(tmp_path: Path) -> None:
    router, _, _ = _router(tmp_path, listing_tasks=[])
    [listed] = router.process([_schema("bags", "Brand"), _listing("l6", "bags")])[1:]
    assert [o.logical_topic for o in _outputs(listed)] == ["router.listings"]
    [result] = router.process([_query(request_id="q6", task="LG", listing_id="l6")])
    [request] = _outputs(result)
    assert (request.logical_topic, request.key) == ("requests", "q6")
    with pytest.raises(ValueError, match="unknown task 'LX'"):
        RouterSettings(listing_tasks=["LX"])

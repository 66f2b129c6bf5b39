"""LG (OPAL's listing generation): resolution against the category's aspect schema, the
prompt's input, the draft's canonical text and the JSON Schema it is decoded under."""

from __future__ import annotations

import jsonschema
import orjson
import pytest

from schemas.events import AspectSchemaEvent, ListingEvent, parse_query
from schemas.tasks import get_task
from schemas.tasks.lg import TITLE_LIMIT, listing_json_schema, parse_listing
from schemas.tasks.resolving import MemoryTables, MissingData
from schemas.tasks.sample import InstructionSample

IMAGES = [{"url": "https://cdn.example/a.jpg"}, {"url": "https://cdn.example/b.jpg"}]
LISTING = ListingEvent(listing_id="l1", category="womens-shoes", images=IMAGES)
SCHEMA = AspectSchemaEvent(
    category="womens-shoes",
    aspects=[
        {"name": "Brand", "required": True},
        {"name": "Colour", "values": ["Black", "White"], "required": True},
        {"name": "Material"},
    ],
)
TASK = get_task("LG")
QUERY = parse_query({"request_id": "q1", "task": "LG", "listing_id": "l1"})


def test_a_listing_waits_for_its_category_schema_then_resolves() -> None:
    with pytest.raises(MissingData, match="no aspect schema for category 'womens-shoes'"):
        TASK.resolve(QUERY, MemoryTables(listings={"l1": LISTING}))
    with pytest.raises(MissingData, match="unknown listing: l1"):
        TASK.resolve(QUERY, MemoryTables(aspect_schemas={"womens-shoes": SCHEMA}))
    tables = MemoryTables(listings={"l1": LISTING}, aspect_schemas={"womens-shoes": SCHEMA})
    request = TASK.resolve(QUERY, tables)
    assert request.options == ["Brand", "Colour", "Material"]
    assert [s.slot for s in request.slots] == ["listing/0", "listing/1"]
    assert request.inputs["seller_text"] == "" and request.inputs["category"] == "womens-shoes"
    assert request.slots[0].caption_vars["seller_text"] == "nothing"
    wire = orjson.loads(request.to_json())["inputs"]["aspect_schema"]
    assert wire[1] == {"name": "Colour", "required": True, "values": ["Black", "White"]}


def test_the_input_carries_captions_ocr_and_the_allowed_aspects() -> None:
    tables = MemoryTables(listings={"l1": LISTING}, aspect_schemas={"womens-shoes": SCHEMA})
    request = TASK.resolve(QUERY, tables)
    sample = TASK.assemble(
        request, {"listing/1": "black leather pumps"}, {"listing/0": "NINE WEST"}
    )
    assert isinstance(sample.input, dict)
    assert sample.input["image information"] == "[1] no information ### [2] black leather pumps"
    assert sample.input["OCR tokens"] == "[1] NINE WEST ### [2] none"
    assert sample.input["allowed aspects"][2] == {"name": "Material", "required": False}
    assert "womens-shoes" in sample.user_message()
    bare = TASK.without_captions(sample, {}).input
    assert isinstance(bare, dict) and "image information" not in bare


def test_a_draft_is_canonical_title_first_and_aspects_in_schema_order() -> None:
    names = ["Brand", "Colour", "Material"]
    text = '{ "aspects": {"Material": "Leather", "Brand": "Nine West"}, "title": "Pumps" }'
    assert parse_listing(text, names) == (
        '{"title":"Pumps","aspects":{"Brand":"Nine West","Material":"Leather"}}'
    )
    outside = '{"title": "Pumps", "aspects": {"Heel": "3 in", "Brand": "X"}}'
    assert (
        parse_listing(outside, names) == '{"title":"Pumps","aspects":{"Brand":"X","Heel":"3 in"}}'
    )
    assert TASK.is_legal(parse_listing(text, names) or "", names)
    assert not TASK.is_legal(outside, names)  # a gold draft keeps to its schema
    for bad in (
        '{"title": "t"}',
        '{"title": 1, "aspects": {}}',
        '{"title": "t", "aspects": {"A": 1}}',
        "no",
    ):
        assert parse_listing(bad, names) is None


def test_the_json_schema_holds_drafts_to_the_category() -> None:
    schema = listing_json_schema(SCHEMA.aspects, max_value_chars=10)
    good = {"title": "Nine West pumps", "aspects": {"Brand": "Nine West", "Colour": "Black"}}
    jsonschema.validate(good, schema)
    bad_drafts = [
        {"title": "t", "aspects": {"Brand": "Nine West"}},  # a required aspect missing
        {"title": "t", "aspects": {**good["aspects"], "Heel": "3 in"}},  # not allowed
        {"title": "t", "aspects": {"Brand": "N", "Colour": "Red"}},  # not a listed value
        {"title": "t", "aspects": {"Brand": "N" * 11, "Colour": "Black"}},  # too long
        {"title": "t" * (TITLE_LIMIT + 1), "aspects": good["aspects"]},
        {**good, "price": "10"},
    ]
    for draft in bad_drafts:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(draft, schema)
    tables = MemoryTables(listings={"l1": LISTING}, aspect_schemas={"womens-shoes": SCHEMA})
    assert TASK.answer_schema(TASK.resolve(QUERY, tables)) == listing_json_schema(SCHEMA.aspects)


def test_every_new_listing_makes_one_lg_query() -> None:
    query = TASK.for_listing(LISTING)
    assert query is not None and query.request_id == "auto-lg:l1"
    assert get_task("DD").for_listing(LISTING) is None


def test_the_sample_rebuilds_the_schema_the_request_is_decoded_under() -> None:
    tables = MemoryTables(listings={"l1": LISTING}, aspect_schemas={"womens-shoes": SCHEMA})
    request = TASK.resolve(QUERY, tables)
    sample = TASK.assemble(request, {"listing/0": "black pumps"})
    assert TASK.sample_schema(sample) == TASK.answer_schema(request)
    assert TASK.sample_schema(sample) == listing_json_schema(SCHEMA.aspects)
    with pytest.raises(ValueError, match="allowed aspects"):
        TASK.sample_schema(InstructionSample("LG", sample.instruction, {"category": "x"}))
    assert get_task("AE").sample_schema(sample) is None

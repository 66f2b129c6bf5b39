"""OPAL's events: listings and the aspect schemas of their categories."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from schemas.events import AspectSchemaEvent, ListingEvent, load_aspect_schemas

IMAGE = {"url": "https://cdn.example/shoe.jpg"}
SCHEMA = {
    "category": "womens-shoes",
    "aspects": [
        {"name": "Brand", "required": True},
        {"name": "Colour", "values": ["Black", "White"]},
    ],
}


def test_a_listing_round_trips_and_bounds_its_photos_and_text() -> None:
    listing = ListingEvent.from_obj(
        {
            "listing_id": "l1",
            "category": "womens-shoes",
            "images": [IMAGE],
            "seller_text": "Worn once.",
        }
    )
    assert ListingEvent.from_json(listing.to_json()) == listing
    for bad in ({"images": []}, {"images": [IMAGE] * 9}, {"seller_text": "x" * 2001}):
        with pytest.raises(ValidationError):
            ListingEvent.from_obj({"listing_id": "l1", "category": "c", "images": [IMAGE], **bad})


def test_an_aspect_schema_needs_distinct_bounded_names() -> None:
    schema = AspectSchemaEvent.from_obj(SCHEMA)
    assert [a.name for a in schema.aspects] == ["Brand", "Colour"]
    assert schema.aspects[0].required and schema.aspects[1].values == ["Black", "White"]
    repeated = {**SCHEMA, "aspects": [{"name": "Brand"}, {"name": "Brand"}]}
    for bad in (repeated, {**SCHEMA, "aspects": []}, {**SCHEMA, "aspects": [{"name": "x" * 41}]}):
        with pytest.raises(ValidationError):
            AspectSchemaEvent.from_obj(bad)


def test_aspect_schemas_load_from_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "schemas.json"
    path.write_bytes(orjson.dumps([SCHEMA, {**SCHEMA, "category": "mens-shoes"}]))
    loaded = load_aspect_schemas(path)
    assert [s.category for s in loaded] == ["womens-shoes", "mens-shoes"]
    path.write_bytes(orjson.dumps([{"category": "c", "aspects": [{"name": "A", "extra": 1}]}]))
    with pytest.raises(ValidationError):
        load_aspect_schemas(path)

"""The demo's built-in sample: every event valid for its topic, and the listing's photo and
aspect schema as LG reads them."""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image

from caslie.demo_data import LISTING_ITEM, build_sample
from schemas.events import AspectSchemaEvent, ListingEvent
from schemas.registry import validate
from schemas.tasks import get_task


def test_every_event_of_the_sample_is_valid_for_its_topic(tmp_path: Path) -> None:
    events = build_sample(tmp_path, "r1")
    assert {"catalog", "reviews", "claims", "aspect_schemas", "listings", "queries"} <= set(events)
    for logical, records in events.items():
        for record in records:
            validate(logical, record)


def test_the_listing_is_a_photo_of_its_item_in_a_category_with_a_schema(tmp_path: Path) -> None:
    events = build_sample(tmp_path, "r1")
    [listing] = [ListingEvent.model_validate(e) for e in events["listings"]]
    [schema] = [AspectSchemaEvent.model_validate(e) for e in events["aspect_schemas"]]
    assert listing.listing_id == "demo-r1-listing" and listing.category == schema.category
    aspects = {a.name: a for a in schema.aspects}
    assert 4 <= len(aspects) <= 6
    assert any(a.required for a in aspects.values()) and any(a.values for a in aspects.values())
    # every value of the drawn item is allowed by the schema it is listed under
    for name, value in LISTING_ITEM.values.items():
        allowed = aspects[name].values
        assert allowed is None or value in allowed
    [image] = listing.images
    path = Path(image.url.removeprefix("file://"))
    assert image.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    with Image.open(path) as photo:
        assert photo.size[0] >= 400 and photo.size[1] >= 400
    # the router's automatic LG query of the listing
    query = get_task("LG").for_listing(listing)
    assert query is not None and query.request_id == "auto-lg:demo-r1-listing"


def test_the_listing_photo_is_the_same_drawing_on_every_run(tmp_path: Path) -> None:
    first = build_sample(tmp_path / "a", "r1")["listings"][0]["images"][0]["sha256"]
    second = build_sample(tmp_path / "b", "r2")["listings"][0]["images"][0]["sha256"]
    assert first == second

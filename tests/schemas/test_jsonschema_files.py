"""The JSON Schema files shipped for external producers must match the models."""

from __future__ import annotations

import json

import jsonschema
import pytest

from schemas.registry import JSONSCHEMA_DIR, TOPIC_TYPES, render_json_schemas


def test_files_are_in_sync_with_models() -> None:
    stale = [
        name
        for name, text in render_json_schemas().items()
        if not (JSONSCHEMA_DIR / name).is_file() or (JSONSCHEMA_DIR / name).read_text() != text
    ]
    assert not stale, f"regenerate with 'caslie schemas export': {stale}"
    assert len(list(JSONSCHEMA_DIR.glob("*.schema.json"))) == len(TOPIC_TYPES)


@pytest.mark.parametrize(
    ("topic", "good", "bad"),
    [
        ("catalog", {"product_id": "p", "title": "t"}, {"product_id": "p"}),
        (
            "queries",
            {"request_id": "r", "task": "PSI", "product_id": "p", "query": "q"},
            {"request_id": "r", "task": "PSI", "product_id": "p"},
        ),
        ("labels", {"request_id": "r", "task": "SA", "label": "A"}, {"request_id": "r"}),
        (
            "listings",
            {"listing_id": "l", "category": "c", "images": [{"url": "https://x.example/a.png"}]},
            {"listing_id": "l", "category": "c", "images": []},
        ),
        (
            "aspect_schemas",
            {"category": "c", "aspects": [{"name": "Brand", "required": True}]},
            {"category": "c", "aspects": [{"name": "Brand", "colour": "red"}]},
        ),
    ],
)
def test_schema_files_accept_and_reject_like_models(topic: str, good: dict, bad: dict) -> None:
    schema = json.loads((JSONSCHEMA_DIR / f"{topic}.schema.json").read_text())
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)

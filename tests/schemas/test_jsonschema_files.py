"""The JSON Schema files shipped for external producers must match the models."""

from __future__ import annotations

import json

import jsonschema
import pytest
from pydantic import ValidationError

from schemas.base import MAX_UNKNOWN_FIELDS, SCHEMA_VERSION
from schemas.registry import (
    JSONSCHEMA_DIR,
    TOPIC_TYPES,
    render_json_schemas,
    schema_id,
    validate,
)


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


def test_every_file_names_its_dialect_and_a_stable_id() -> None:
    for name in TOPIC_TYPES:
        schema = json.loads((JSONSCHEMA_DIR / f"{name}.schema.json").read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == schema_id(name) == f"urn:caslie-stream:schema:{name}"


@pytest.mark.parametrize("topic", ["catalog", "queries", "labels"])
def test_schema_files_follow_the_version_rule_like_models(topic: str) -> None:
    """Unknown fields: accepted (a few, at any version) by the file as by the model."""
    good = {
        "catalog": {"product_id": "p", "title": "t"},
        "queries": {"request_id": "r", "task": "SA", "review": "fine"},
        "labels": {"request_id": "r", "task": "SA", "label": "A"},
    }[topic]
    schema = json.loads((JSONSCHEMA_DIR / f"{topic}.schema.json").read_text())
    future = {**good, "version": SCHEMA_VERSION + 1, "gift_wrap": True}
    jsonschema.validate(future, schema)
    validate(topic, future)
    too_many = {**future, **{f"f{i}": i for i in range(MAX_UNKNOWN_FIELDS + 1)}}
    for ahead in ({**good, "gift_wrap": True}, {**good, "version": 1, "gift_wrap": True}):
        jsonschema.validate(ahead, schema)
        validate(topic, ahead)
    with pytest.raises(ValidationError):
        validate(topic, too_many)
    # the file bounds the total (the fields it knows and 32 more), which 200 fields exceed
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**future, **{f"f{i}": i for i in range(200)}}, schema)

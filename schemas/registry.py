"""Which model validates which topic, and the JSON Schema files generated from them."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, TypeAdapter

from schemas.accumulator import JoinState
from schemas.dlq import DlqEnvelope
from schemas.events import (
    AspectSchemaEvent,
    ClaimEvent,
    ListingEvent,
    ProductEvent,
    Query,
    ReviewEvent,
    parse_query,
)
from schemas.records import (
    AdapterAnnouncement,
    CaptionedRecord,
    EnrichedRecord,
    LabelEvent,
    Prediction,
    PredictionFailure,
    TaskRequest,
)
from schemas.router import RecentReviews, RejectedProduct, WaitingQuery

#: Logical topic name -> the type its values must validate as.
TOPIC_TYPES: MappingProxyType[str, Any] = MappingProxyType(
    {
        "catalog": ProductEvent,
        "reviews": ReviewEvent,
        "claims": ClaimEvent,
        "listings": ListingEvent,
        "aspect_schemas": AspectSchemaEvent,
        # one model per task, picked by ``task`` (schemas.tasks.registry)
        "queries": Query,
        "requests": TaskRequest,
        "captioned": CaptionedRecord,
        "enriched": EnrichedRecord,
        # an answer, or the failure that ends a query that could not be answered
        "predictions": Prediction | PredictionFailure,
        "labels": LabelEvent,
        "adapters": AdapterAnnouncement,
        "dlq": DlqEnvelope,
        "queries.waiting": WaitingQuery,
        "router.products": ProductEvent,
        "router.reviews": RecentReviews,
        "router.claims": ClaimEvent,
        "router.listings": ListingEvent,
        "router.aspect_schemas": AspectSchemaEvent,
        "router.rejected": RejectedProduct,
        "accumulator.state": JoinState,
    }
)
_ADAPTERS = {name: TypeAdapter(tp) for name, tp in TOPIC_TYPES.items()}


def _query_schema() -> dict[str, Any]:
    """``oneOf`` the registered tasks' query models, picked by ``task``."""
    from pydantic.json_schema import models_json_schema

    from schemas.tasks.registry import all_tasks

    models = [task.query_model for task in all_tasks()]
    refs, schema = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/$defs/{model}"
    )
    return {
        "oneOf": [refs[(m, "validation")] for m in models],
        "discriminator": {"propertyName": "task"},
        "$defs": schema.get("$defs", {}),
    }


JSONSCHEMA_DIR = Path(__file__).parent / "jsonschema"
#: The ``$id`` of a topic's schema is this prefix and the logical topic name
#: (``urn:caslie-stream:schema:catalog``): a name, not an address (nothing is served there),
#: stable across versions because versions are additive (:mod:`schemas.base`).
SCHEMA_ID_PREFIX = "urn:caslie-stream:schema:"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_id(logical_topic: str) -> str:
    """The stable ``$id`` of a topic's JSON Schema."""
    return f"{SCHEMA_ID_PREFIX}{logical_topic}"


def validate(logical_topic: str, obj: object) -> BaseModel:
    """Validate a decoded JSON value for a topic; raises ``pydantic.ValidationError``."""
    if logical_topic == "queries":
        return parse_query(obj)
    result: BaseModel = _ADAPTERS[logical_topic].validate_python(obj)
    return result


def json_schema(logical_topic: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of a topic's values, with its :func:`schema_id`."""
    schema: dict[str, Any] = (
        _query_schema() if logical_topic == "queries" else _ADAPTERS[logical_topic].json_schema()
    )
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$id"] = schema_id(logical_topic)
    schema.setdefault("title", logical_topic)
    return schema


def render_json_schemas() -> dict[str, str]:
    """File name -> text of every generated JSON Schema file."""
    return {
        f"{name}.schema.json": json.dumps(json_schema(name), indent=2, sort_keys=True) + "\n"
        for name in TOPIC_TYPES
    }


def write_json_schemas(directory: Path = JSONSCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_json_schemas().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written

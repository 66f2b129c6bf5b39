"""Which model validates which topic, and the JSON Schema files generated from them."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, TypeAdapter

from schemas.dlq import DlqEnvelope
from schemas.events import ProductEvent, QueryEvent, ReviewEvent
from schemas.records import (
    AdapterAnnouncement,
    CaptionedRecord,
    EnrichedRecord,
    LabelEvent,
    Prediction,
    TaskRequest,
)
from schemas.router import RecentReviews, WaitingQuery

#: Logical topic name -> the type its values must validate as.
TOPIC_TYPES: MappingProxyType[str, Any] = MappingProxyType(
    {
        "catalog": ProductEvent,
        "reviews": ReviewEvent,
        "queries": QueryEvent,
        "requests": TaskRequest,
        "captioned": CaptionedRecord,
        "enriched": EnrichedRecord,
        "predictions": Prediction,
        "labels": LabelEvent,
        "adapters": AdapterAnnouncement,
        "dlq": DlqEnvelope,
        "queries.waiting": WaitingQuery,
        "router.products": ProductEvent,
        "router.reviews": RecentReviews,
    }
)
_ADAPTERS = {name: TypeAdapter(tp) for name, tp in TOPIC_TYPES.items()}

JSONSCHEMA_DIR = Path(__file__).parent / "jsonschema"


def validate(logical_topic: str, obj: object) -> BaseModel:
    """Validate a decoded JSON value for a topic; raises ``pydantic.ValidationError``."""
    result: BaseModel = _ADAPTERS[logical_topic].validate_python(obj)
    return result


def json_schema(logical_topic: str) -> dict[str, Any]:
    schema: dict[str, Any] = _ADAPTERS[logical_topic].json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
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

"""Event and record models for every caslie topic, the task specs, and JSON Schema export."""

from schemas.base import SCHEMA_VERSION, Record
from schemas.dlq import DlqEnvelope, ErrorKind
from schemas.events import ClaimEvent, ProductEvent, Query, ReviewEvent, parse_query
from schemas.images import ImageRef
from schemas.records import (
    AdapterAnnouncement,
    Caption,
    CaptionedRecord,
    EnrichedRecord,
    ImageSlot,
    JudgeVote,
    LabelEvent,
    Prediction,
    PredictionFailure,
    SlotVerdict,
    TaskRequest,
    TraceEntry,
)
from schemas.registry import TOPIC_TYPES, validate

__all__ = [
    "SCHEMA_VERSION",
    "TOPIC_TYPES",
    "AdapterAnnouncement",
    "Caption",
    "CaptionedRecord",
    "ClaimEvent",
    "DlqEnvelope",
    "EnrichedRecord",
    "ErrorKind",
    "ImageRef",
    "ImageSlot",
    "JudgeVote",
    "LabelEvent",
    "Prediction",
    "PredictionFailure",
    "ProductEvent",
    "Query",
    "Record",
    "ReviewEvent",
    "SlotVerdict",
    "TaskRequest",
    "TraceEntry",
    "parse_query",
    "validate",
]

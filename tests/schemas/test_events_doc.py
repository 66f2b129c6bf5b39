"""docs/events.md is the contract a producer follows: every example line there is read by the
service's own decoder as its topic's model, every event topic and every task's query has one,
the key table says what the topic registry says, and every answer field is described."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from schemas.events import parse_query
from schemas.records import Prediction, PredictionFailure
from schemas.tasks.registry import task_codes
from streams.codec import decode
from streams.exceptions import DecodeFailure
from streams.topics import BY_LOGICAL

DOC = Path(__file__).parents[2] / "docs" / "events.md"
TEXT = DOC.read_text()
#: ```json caslie:<topic> ... ``` blocks: one record per line.
BLOCK = re.compile(r"^```json caslie:(\S+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
EXAMPLES: list[tuple[str, str]] = [
    (topic, line)
    for topic, body in BLOCK.findall(TEXT)
    for line in body.splitlines()
    if line.strip()
]
#: The topics users (and their tools) produce to.
EVENT_TOPICS = ("catalog", "reviews", "claims", "listings", "aspect_schemas", "queries", "labels")


@pytest.mark.parametrize(
    ("topic", "line"), EXAMPLES, ids=[f"{t}-{i}" for i, (t, _) in enumerate(EXAMPLES)]
)
def test_every_example_line_is_a_valid_record_of_its_topic(topic: str, line: str) -> None:
    assert topic in BY_LOGICAL, f"no topic {topic!r}"
    try:
        decode(line.encode(), topic)
    except DecodeFailure as exc:
        pytest.fail(f"docs/events.md example for {topic} is refused: {exc.kind}: {exc.message}")


def test_every_event_topic_and_every_task_has_an_example() -> None:
    topics = {topic for topic, _ in EXAMPLES}
    assert set(EVENT_TOPICS) | {"predictions"} <= topics
    asked = {parse_query(orjson.loads(line)).task for t, line in EXAMPLES if t == "queries"}
    missing = [code for code in task_codes() if code not in asked]
    assert not missing, f"add an example query to docs/events.md for {missing}"


def test_both_kinds_of_answer_have_an_example() -> None:
    kinds = {
        type(decode(line.encode(), "predictions")) for t, line in EXAMPLES if t == "predictions"
    }
    assert kinds == {Prediction, PredictionFailure}


@pytest.mark.parametrize("topic", [*EVENT_TOPICS, "predictions"])
def test_the_key_table_names_the_registrys_key_field(topic: str) -> None:
    assert f"| `{topic}` | `{BY_LOGICAL[topic].key}` |" in TEXT


@pytest.mark.parametrize("model", [Prediction, PredictionFailure])
def test_every_answer_field_is_described(model: type[Prediction | PredictionFailure]) -> None:
    missing = [name for name in model.model_fields if f"`{name}`" not in TEXT]
    assert not missing, f"describe {model.__name__} fields {missing} in docs/events.md"

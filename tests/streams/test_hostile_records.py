"""The hostile record corpus (tests/data/hostile/records.json) and a schema fuzzer: every bad
value is refused with its error kind and a precise reason; nothing else escapes ``decode``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.dlq import ErrorKind
from schemas.registry import TOPIC_TYPES
from streams.codec import decode
from streams.exceptions import DecodeFailure
from tests.support.hostile import CORPUS, raw_value


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_hostile_record_is_refused_with_its_reason(case: dict[str, Any]) -> None:
    with pytest.raises(DecodeFailure) as info:
        decode(raw_value(case), case["topic"])
    assert info.value.kind == ErrorKind(case["kind"])
    assert case["reason"] in info.value.message
    assert len(info.value.message) < 2000, "reasons stay readable"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)
#: Dicts shaped like events: known field names with arbitrary values.
FIELDS = [
    "product_id",
    "title",
    "request_id",
    "task",
    "text",
    "images",
    "url",
    "review_id",
    "rating",
    "options",
    "inputs",
    "slots",
    "schema_version",
    "product_ids",
    "question",
]
event_like = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=st.sampled_from(sorted(TOPIC_TYPES)), value=json_values | event_like)
def test_fuzzed_json_is_decoded_or_refused_with_a_kind(topic: str, value: Any) -> None:
    raw = json.dumps(value).encode()
    try:
        decode(raw, topic)
    except DecodeFailure as exc:
        assert exc.kind in ErrorKind and exc.message


@settings(max_examples=200, deadline=None)
@given(topic=st.sampled_from(sorted(TOPIC_TYPES)), raw=st.binary(max_size=300))
def test_fuzzed_bytes_are_decoded_or_refused_with_a_kind(topic: str, raw: bytes) -> None:
    try:
        decode(raw, topic)
    except DecodeFailure as exc:
        assert exc.kind in ErrorKind and exc.message

"""``streams.consume.envelope``: a record as kcat ``-J`` prints it (no broker)."""

from __future__ import annotations

from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_NOT_AVAILABLE, Message

from streams.consume import envelope


def test_an_envelope_has_kcats_fields_and_the_value_as_json() -> None:
    msg = Message(
        topic="caslie.predictions",
        partition=3,
        offset=41,
        key=b"req-1",
        value=b'{"request_id": "req-1", "label": "yes"}',
        headers=[("caslie-id", b"abc"), ("traceparent", b"00-1-2-01")],
        timestamp=(TIMESTAMP_CREATE_TIME, 1_764_600_000_123),
    )
    assert envelope(msg) == {
        "topic": "caslie.predictions",
        "partition": 3,
        "offset": 41,
        "tstype": "create",
        "ts": 1_764_600_000_123,
        "headers": ["caslie-id", "abc", "traceparent", "00-1-2-01"],
        "key": "req-1",
        "payload": {"request_id": "req-1", "label": "yes"},
    }


def test_a_value_that_is_no_json_stays_text_and_a_null_value_is_none() -> None:
    text = Message(topic="t", partition=0, offset=0, value=b"not json \xff")
    assert envelope(text)["payload"] == "not json \ufffd"
    tombstone = Message(
        topic="t", partition=0, offset=1, key=b"k", timestamp=(TIMESTAMP_NOT_AVAILABLE, 0)
    )
    got = envelope(tombstone)
    assert (got["payload"], got["key"], got["headers"]) == (None, "k", [])
    assert (got["tstype"], got["ts"]) == ("none", None)

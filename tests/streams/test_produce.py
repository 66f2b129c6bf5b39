"""The key rule of ``caslie produce`` and :func:`streams.produce.produce_event` (no broker:
the producer is a recording stand-in; the round trip is in tests/caslie/test_cli.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from schemas.dlq import ErrorKind
from streams.config import Settings
from streams.exceptions import DecodeFailure
from streams.produce import KeyMismatch, parse_line, produce_event

PRODUCT = b'{"product_id": "p1", "title": "Mug"}'
QUERY = b'{"request_id": "r1", "task": "SA", "review": "Lovely"}'


class RecordingProducer:
    """Stands in for ``confluent_kafka.Producer``: keeps what it was asked to produce."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    def produce(self, topic: str, key: bytes | None = None, value: bytes = b"", **_: Any) -> None:
        self.sent.append((topic, key, value))


def test_a_bare_value_is_keyed_by_its_topics_key_field() -> None:
    assert parse_line(PRODUCT, "catalog") == ("p1", PRODUCT)
    assert parse_line(QUERY, "queries") == ("r1", QUERY)


def test_a_matching_key_is_kept_and_a_wrong_one_refused_with_the_field() -> None:
    assert parse_line(b"p1\t" + PRODUCT, "catalog", b"\t") == ("p1", PRODUCT)
    assert parse_line(b"r1:" + QUERY, "queries", b":") == ("r1", QUERY)
    with pytest.raises(KeyMismatch) as info:
        parse_line(b"p2\t" + PRODUCT, "catalog", b"\t")
    assert str(info.value) == (
        "key 'p2' is not the value's product_id 'p1' (the catalog topic is keyed by product_id)"
    )
    with pytest.raises(KeyMismatch, match="no '\\\\t' delimiter"):
        parse_line(PRODUCT, "catalog", b"\t")


def test_an_empty_catalog_value_with_a_key_is_a_tombstone() -> None:
    assert parse_line(b"p1\t", "catalog", b"\t") == ("p1", None)
    with pytest.raises(KeyMismatch, match="needs a key"):
        parse_line(b"\t", "catalog", b"\t")
    with pytest.raises(DecodeFailure) as info:
        parse_line(b"r1\t", "queries", b"\t")  # only catalog has deletes
    assert info.value.kind == ErrorKind.INVALID_JSON


def test_a_bad_value_is_refused_before_its_key_is_looked_at() -> None:
    with pytest.raises(DecodeFailure) as info:
        parse_line(b'p1\t{"product_id": "p1"}', "catalog", b"\t")
    assert "title" in info.value.message


def test_produce_event_keys_by_the_value_and_checks_a_given_key() -> None:
    producer = RecordingProducer()
    settings = Settings(topic_prefix="t.")
    event = {"request_id": "r1", "task": "SA", "review": "Lovely"}
    produce_event(producer, settings, "queries", event)  # type: ignore[arg-type]
    produce_event(producer, settings, "queries", event, key="r1")  # type: ignore[arg-type]
    assert producer.sent == [("t.queries", b"r1", orjson.dumps(event))] * 2
    with pytest.raises(KeyMismatch):
        produce_event(producer, settings, "queries", event, key="r2")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        produce_event(producer, settings, "queries", {"request_id": "r", "task": "SA"})  # type: ignore[arg-type]
    assert len(producer.sent) == 2, "nothing is sent for a refused event"

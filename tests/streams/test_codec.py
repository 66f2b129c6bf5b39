from __future__ import annotations

import pytest

from schemas import ProductEvent
from schemas.dlq import ErrorKind
from streams.codec import TOMBSTONE, decode, encode, encode_value
from streams.exceptions import DecodeFailure


@pytest.mark.parametrize(
    ("raw", "topic", "kind"),
    [
        (b"\xff\xfe not utf8", "catalog", ErrorKind.UNDECODABLE),
        (b"{not json", "catalog", ErrorKind.INVALID_JSON),
        (b'{"product_id": "p"}', "catalog", ErrorKind.SCHEMA),
        (b"[1, 2]", "catalog", ErrorKind.SCHEMA),
        (b'{"request_id": "r", "task": "XYZ"}', "queries", ErrorKind.UNKNOWN_TASK),
        (b'{"request_id": "r"}', "queries", ErrorKind.UNKNOWN_TASK),
        (b'{"request_id": "r", "task": "AP", "product_id": "p"}', "queries", ErrorKind.SCHEMA),
        (None, "queries", ErrorKind.SCHEMA),
        (b"null", "catalog", ErrorKind.SCHEMA),
        (b'{"a": "' + b"x" * 1_100_000 + b'"}', "catalog", ErrorKind.OVERSIZED),
    ],
)
def test_decode_failures_name_their_kind(raw: bytes | None, topic: str, kind: ErrorKind) -> None:
    with pytest.raises(DecodeFailure) as info:
        decode(raw, topic)
    assert info.value.kind == kind
    assert info.value.message


def test_schema_error_message_names_the_field() -> None:
    with pytest.raises(DecodeFailure, match="title"):
        decode(b'{"product_id": "p"}', "catalog")


def test_decode_valid() -> None:
    product = decode(b'{"product_id": "p", "title": "t"}', "catalog")
    assert isinstance(product, ProductEvent)


@pytest.mark.parametrize(
    ("raw", "topic"),
    [
        (None, "catalog"),
        (None, "router.products"),
        (None, "router.reviews"),
        (b"null", "router.products"),
        (b"null", "router.reviews"),
    ],
)
def test_a_null_value_is_a_tombstone_where_it_deletes(raw: bytes | None, topic: str) -> None:
    assert decode(raw, topic) is TOMBSTONE


def test_a_tombstone_encodes_as_a_null_value() -> None:
    assert encode_value(TOMBSTONE) is None
    assert encode(TOMBSTONE) == b"null"  # for a producer that can only send bytes
    assert encode_value(ProductEvent(product_id="p", title="t")) == encode(
        ProductEvent(product_id="p", title="t")
    )

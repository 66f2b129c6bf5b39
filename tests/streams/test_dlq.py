from __future__ import annotations

import orjson
import pytest

from schemas.dlq import ErrorKind
from streams.codec import MAX_RECORD_BYTES, encode
from streams.config import DlqSettings
from streams.dlq import REDACTED, DlqPolicy, Failure, failure_record, make_envelope, request_of
from streams.exceptions import DlqLimitExceeded


def _failure(value: bytes) -> Failure:
    return Failure("caslie.queries", 1, 42, b"k", value, ErrorKind.SCHEMA, "bad shape")


def test_envelope_truncates_and_redacts() -> None:
    value = orjson.dumps({"token": "secret", "text": "x" * 100})
    envelope = make_envelope(
        "router", _failure(value), DlqSettings(payload_max_bytes=30, redact_fields=["token"])
    )
    assert "secret" not in envelope.payload
    assert REDACTED in envelope.payload
    assert envelope.payload_truncated
    assert envelope.payload_bytes == len(value)
    assert (envelope.topic, envelope.partition, envelope.offset) == ("caslie.queries", 1, 42)
    assert envelope.error_kind == ErrorKind.SCHEMA


def test_envelope_redacts_nested_fields_and_payloads_that_are_not_json() -> None:
    settings = DlqSettings(redact_fields=["email"])
    nested = orjson.dumps({"request_id": "r", "user": {"contacts": [{"email": "alice@x.io"}]}})
    assert "alice" not in make_envelope("router", _failure(nested), settings).payload
    truncated = b'{"request_id": "r", "email": "bob@x.io", "text": "cut sho'
    envelope = make_envelope("router", _failure(truncated), settings)
    assert "bob@x.io" not in envelope.payload
    assert envelope.payload.startswith('{"request_id": "r", "email": "<redacted>"')
    assert envelope.payload_bytes == len(truncated)


def test_envelope_redacts_url_credentials_in_payload_and_message() -> None:
    url = "https://bob:hunter2@cdn.example.com/a.png?X-Amz-Credential=AKIAX&X-Amz-Signature=s1g"
    value = b'{"product_id": "p", "price": NaN, "images": [{"url": "' + url.encode() + b'"}]}'
    failure = Failure(
        "caslie.catalog", 0, 7, None, value, ErrorKind.INVALID_JSON, f"cannot fetch {url}"
    )
    envelope = make_envelope("router", failure, DlqSettings())
    for secret in ("hunter2", "AKIAX", "s1g"):
        assert secret not in envelope.payload and secret not in envelope.message
    assert "https://<redacted>@cdn.example.com/a.png" in envelope.payload
    assert envelope.message.startswith("cannot fetch https://<redacted>@cdn.example.com")


def test_envelope_keeps_the_whole_record_and_its_request_id() -> None:
    value = orjson.dumps({"request_id": "r-7", "text": "y" * 200_000})
    envelope = make_envelope("router", _failure(value), DlqSettings(), request_id="r-7")
    assert envelope.payload.encode() == value
    assert not envelope.payload_truncated and not envelope.payload_redacted
    assert envelope.request_id == "r-7"


def test_envelope_stays_under_the_record_limit_when_escaping_makes_it_longer() -> None:
    value = b'"' * 800_000  # each byte escapes to two in the envelope's JSON
    envelope = make_envelope("router", _failure(value), DlqSettings())
    assert envelope.payload_truncated
    assert len(encode(envelope)) <= MAX_RECORD_BYTES
    assert envelope.payload_bytes == len(value)


def test_request_of_reads_invalid_json_records_and_waiting_queries() -> None:
    assert request_of("requests", b'{"request_id": "r1", "task": "SA", "inputs": 5}') == (
        "r1",
        "SA",
    )
    waiting = orjson.dumps({"query": '{"request_id": "r2", "task": "PSI"}', "deadline": "x"})
    assert request_of("queries.waiting", waiting) == ("r2", "PSI")
    for raw in (b"\xff", b"[1]", b'{"request_id": 5}', b"{broken", None):
        assert request_of("queries", raw) == (None, None)


def test_failure_record_redacts_its_reason_and_refuses_unusable_ids() -> None:
    failure = Failure(
        "caslie.requests", 0, 1, None, b"", ErrorKind.PROCESSING, "GET https://u:pw@h/x failed"
    )
    record = failure_record("captioner", failure, "r1", "SA")
    assert record is not None and "pw" not in record.reason
    assert (record.request_id, record.task, record.error_kind) == ("r1", "SA", "processing")
    assert failure_record("captioner", failure, "x" * 300, None) is None


def test_envelope_of_binary_payload() -> None:
    envelope = make_envelope("router", _failure(b"\xff\xfe\x00"), DlqSettings())
    assert envelope.payload_bytes == 3
    assert not envelope.payload_truncated


def test_consecutive_limit() -> None:
    policy = DlqPolicy(DlqSettings(max_consecutive=3, window=1000))
    policy.check_invalid("s", ErrorKind.SCHEMA)
    policy.check_invalid("s", ErrorKind.SCHEMA)
    with pytest.raises(DlqLimitExceeded, match="3 invalid records in a row"):
        policy.check_invalid("s", ErrorKind.SCHEMA)


def test_valid_record_resets_consecutive_count() -> None:
    policy = DlqPolicy(DlqSettings(max_consecutive=3, window=1000))
    for _ in range(10):
        policy.check_invalid("s", ErrorKind.SCHEMA)
        policy.check_invalid("s", ErrorKind.SCHEMA)
        policy.record_valid()


def test_ratio_limit_over_window() -> None:
    policy = DlqPolicy(DlqSettings(max_consecutive=1000, max_ratio=0.5, window=10))
    with pytest.raises(DlqLimitExceeded, match="of the last 10 records"):
        for _ in range(20):
            policy.check_invalid("s", ErrorKind.SCHEMA)
            policy.check_invalid("s", ErrorKind.SCHEMA)
            policy.record_valid()  # 2 of 3 invalid: 67% > 50%


def test_ratio_below_limit_runs_forever() -> None:
    policy = DlqPolicy(DlqSettings(max_consecutive=1000, max_ratio=0.5, window=10))
    for _ in range(100):
        policy.check_invalid("s", ErrorKind.SCHEMA)
        policy.record_valid()
        policy.record_valid()


def test_products_that_never_arrived_do_not_trip_the_limit() -> None:
    """A catalog outage makes every waiting query expire as unknown_product: valid input,
    so the stage that reports them must not stop at the DLQ limit (it crash-looped)."""
    policy = DlqPolicy(DlqSettings(max_consecutive=3, window=10))
    for _ in range(50):
        policy.check_invalid("router.waiting", ErrorKind.UNKNOWN_PRODUCT)
    policy.check_invalid("router.waiting", ErrorKind.SCHEMA)  # garbage still counts
    policy.check_invalid("router.waiting", ErrorKind.SCHEMA)
    with pytest.raises(DlqLimitExceeded):
        policy.check_invalid("router.waiting", ErrorKind.SCHEMA)

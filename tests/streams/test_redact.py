from __future__ import annotations

import pytest

from streams.redact import REDACTED, redact_payload, redact_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:pass@host/a.png", f"https://{REDACTED}@host/a.png"),
        ("fetching s3://AKIA:x@bucket/k failed", f"fetching s3://{REDACTED}@bucket/k failed"),
        (
            "https://b.s3.amazonaws.com/k.png?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F1"
            "&X-Amz-Signature=abc&X-Amz-Security-Token=tok",
            "https://b.s3.amazonaws.com/k.png?X-Amz-Algorithm=AWS4"
            f"&X-Amz-Credential={REDACTED}&X-Amz-Signature={REDACTED}"
            f"&X-Amz-Security-Token={REDACTED}",
        ),
        (
            "'http://h/a?AWSAccessKeyId=AK&Signature=xyz&Expires=1' failed",
            f"'http://h/a?AWSAccessKeyId={REDACTED}&Signature={REDACTED}&Expires=1' failed",
        ),
        ("http://h/a?sig=1&token=2&key=3&access_token=4#f", None),
        ("a plain message about user@example.com", "a plain message about user@example.com"),
        ("http://host/path@not-userinfo", "http://host/path@not-userinfo"),
    ],
)
def test_url_secrets_are_redacted_anywhere_in_text(text: str, expected: str | None) -> None:
    if expected is None:
        expected = (
            "http://h/a?"
            + "&".join(f"{name}={REDACTED}" for name in ("sig", "token", "key", "access_token"))
            + "#f"
        )
    assert redact_text(text) == expected


def test_payload_fields_are_redacted_at_any_depth_and_in_broken_json() -> None:
    nested = b'{"a": {"email": "alice@x.io", "list": [{"email": "bob@x.io"}]}, "n": 1}'
    out = redact_payload(nested, ["email"])
    assert b"alice" not in out and b"bob" not in out and b'"n":1' in out
    broken = b'{"request_id": "r", "email": "carol@x.io", "phone": 5551234, "text": "cut sho'
    out = redact_payload(broken, ["email", "phone"])
    assert b"carol" not in out and b"5551234" not in out
    assert out.startswith(b'{"request_id": "r", "email": "<redacted>"')
    cut = b'{"email": "dave@x.io is cut sh'
    assert b"dave" not in redact_payload(cut, ["email"])
    assert redact_payload(b'{"a": 1}', ["email"]) == b'{"a": 1}'


def test_binary_payloads_are_redacted_as_bytes() -> None:
    raw = b"\xff\xfe https://u:p4ss@h/x?sig=zz \x00"
    out = redact_payload(raw, [])
    assert b"p4ss" not in out and b"zz" not in out and out.startswith(b"\xff\xfe")


@pytest.mark.timeout(20)  # a hang guard: linear takes well under a second, quadratic minutes
def test_hostile_text_is_redacted_in_linear_time() -> None:
    """Record values up to the 1 MB limit reach the DLQ: no input may make redaction crawl."""
    for raw in (b"a." * 100_000, b";token=" * 30_000, b"http://" * 30_000, b'"email": ' * 20_000):
        assert redact_payload(raw, ["email"])
        assert redact_text(raw.decode())

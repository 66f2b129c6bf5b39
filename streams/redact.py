"""Secrets out of text that leaves the process: DLQ envelopes, caption errors, log lines.

- :func:`redact_text` replaces, anywhere in a text, the user info of URLs
  (``https://user:pass@host`` -> ``https://<redacted>@host``) and the values of query
  parameters that carry credentials (presigned S3/GCS URLs, SAS tokens, API keys:
  ``X-Amz-Signature``, ``X-Amz-Credential``, ``X-Amz-Security-Token``, ``Signature``,
  ``AWSAccessKeyId``, ``token``, ``sig``, ``key``, ``access_token`` ... see
  :data:`SECRET_PARAMS`).
- :func:`redact_payload` does that to a record's raw bytes and also replaces the values of
  the configured field names: at any depth when the bytes are valid JSON, and in JSON-like
  text (``"name": "value"`` or ``"name": 123``) when they are not, which is most of what
  reaches the DLQ (truncated, NaN, broken syntax).

Redaction never fails: bytes that are not UTF-8 are matched as bytes.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

REDACTED = "<redacted>"

#: Query parameters whose values are credentials (matched case-insensitively).
SECRET_PARAMS = (
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "signature",
    "awsaccesskeyid",
    "sig",
    "token",
    "access_token",
    "id_token",
    "refresh_token",
    "key",
    "api_key",
    "apikey",
    "password",
    "secret",
    "client_secret",
)

#: A scheme of at most 32 characters: unbounded, text like "a.a.a.a..." took quadratic time.
_USERINFO = r"(?i)(\b[a-z][a-z0-9+.\-]{0,31}://)[^/\s@?#\"'<>\\]+@"
_PARAM = r"(?i)([?&;](?:" + "|".join(re.escape(p) for p in SECRET_PARAMS) + r")=)[^&#\s\"'<>\\]*"

_USERINFO_S = re.compile(_USERINFO)
_PARAM_S = re.compile(_PARAM)
_USERINFO_B = re.compile(_USERINFO.encode())
_PARAM_B = re.compile(_PARAM.encode())


def redact_text(text: str) -> str:
    """``text`` with URL user info and credential query parameters replaced."""
    text = _USERINFO_S.sub(rf"\1{REDACTED}@", text)
    return _PARAM_S.sub(rf"\1{REDACTED}", text)


def _redact_bytes(raw: bytes) -> bytes:
    mark = REDACTED.encode()
    raw = _USERINFO_B.sub(rb"\1" + mark + b"@", raw)
    return _PARAM_B.sub(rb"\1" + mark, raw)


def _redact_fields_in_json(obj: Any, names: frozenset[str]) -> bool:
    """Replace, in place and at any depth, the values of ``names``; True when any was."""
    found = False
    stack = [obj]  # iterative: orjson accepts nesting deeper than Python's recursion limit
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for name, value in node.items():
                if name in names:
                    node[name] = REDACTED
                    found = True
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))
    return found


def _field_pattern(names: list[str]) -> re.Pattern[bytes]:
    alternatives = b"|".join(re.escape(n.encode()) for n in names)
    # "name" : "string, possibly cut short"  |  "name" : scalar
    return re.compile(rb'("(?:' + alternatives + rb')"\s*:\s*)(?:"(?:[^"\\]|\\.)*"?|[^,}\]\s]+)')


def redact_payload(raw: bytes, fields: list[str]) -> bytes:
    """``raw`` with the values of ``fields`` and every URL secret replaced."""
    if fields:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raw = _field_pattern(fields).sub(rb'\1"' + REDACTED.encode() + b'"', raw)
        else:
            if _redact_fields_in_json(obj, frozenset(fields)):
                raw = orjson.dumps(obj)
    return _redact_bytes(raw)

"""Dead-letter envelopes, the failure records that end their queries, and the limits that
stop a stage fed only garbage.

An envelope's payload and message pass through :mod:`streams.redact` (URL user info,
credential query parameters, the ``dlq.redact_fields`` values) before any truncation. The
payload is kept whole up to ``dlq.payload_max_bytes`` and the broker's record limit, so
``caslie dlq replay`` can re-drive it; only a longer one is cut (``payload_truncated``).

A record that carries a request (:data:`~streams.topics.QUERY_TOPICS`), readable enough to
find its ``request_id`` even when it fails validation, also ends its query:
:func:`failure_record` is the :class:`~schemas.records.PredictionFailure` the runner
produces on ``predictions`` beside the envelope.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from schemas.base import now
from schemas.dlq import DlqEnvelope, ErrorKind
from schemas.records import PredictionFailure
from streams.codec import MAX_RECORD_BYTES, encode
from streams.config import DlqSettings
from streams.exceptions import DlqLimitExceeded
from streams.redact import REDACTED, redact_payload, redact_text

__all__ = [
    "NOT_GARBAGE",
    "REDACTED",
    "DlqPolicy",
    "Failure",
    "failure_record",
    "make_envelope",
    "request_of",
]

#: Error kinds that say nothing about the input being garbage (see ``DlqPolicy``).
NOT_GARBAGE = frozenset({ErrorKind.UNKNOWN_PRODUCT})


@dataclass(frozen=True)
class Failure:
    """Where a record came from and why it could not be processed."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    kind: ErrorKind
    message: str


def make_envelope(
    stage: str, failure: Failure, settings: DlqSettings, request_id: str | None = None
) -> DlqEnvelope:
    """The envelope of ``failure``: its payload redacted, whole unless it is longer than
    ``settings.payload_max_bytes`` or the envelope would pass the broker's record limit
    (JSON escaping can make it longer than the payload), then cut and marked truncated."""
    raw = failure.value or b""
    shown = redact_payload(raw, settings.redact_fields)
    limit = settings.payload_max_bytes
    while True:
        cut = shown[:limit]
        envelope = DlqEnvelope(
            stage=stage,
            topic=failure.topic,
            partition=failure.partition,
            offset=failure.offset,
            error_kind=failure.kind,
            message=redact_text(failure.message)[:8000],
            key=failure.key.decode("utf-8", "replace")[:512] if failure.key else None,
            request_id=request_id[:512] if request_id else None,
            payload=cut.decode("utf-8", "replace"),
            payload_truncated=len(cut) < len(shown),
            payload_redacted=shown != raw,
            payload_bytes=len(raw),
            failed_at=now(),
        )
        size = len(encode(envelope))
        if size <= MAX_RECORD_BYTES or not cut:
            return envelope
        limit = max(0, len(cut) - (size - MAX_RECORD_BYTES) - 1024)


def request_of(logical_topic: str, raw: bytes | None) -> tuple[str | None, str | None]:
    """The ``request_id`` and ``task`` a record of ``logical_topic`` carries, where its bytes
    are JSON readable enough to say (schema-invalid records included); ``(None, None)`` else.
    A ``queries.waiting`` record carries its query as JSON text."""
    try:
        obj = orjson.loads(raw or b"")
        if logical_topic == "queries.waiting" and isinstance(obj, dict):
            obj = orjson.loads(obj.get("query", ""))
    except (orjson.JSONDecodeError, TypeError):
        return None, None
    if not isinstance(obj, dict):
        return None, None
    rid, task = obj.get("request_id"), obj.get("task")
    request_id = rid if isinstance(rid, str) and rid else None
    return request_id, (task if isinstance(task, str) else None)


def failure_record(
    stage: str, failure: Failure, request_id: str, task: str | None
) -> PredictionFailure | None:
    """The record that ends the query ``request_id`` (the true reason, redacted); ``None``
    when the id cannot be a valid one (nothing could be keyed by it)."""
    try:
        return PredictionFailure(
            request_id=request_id,
            task=task if task and len(task) <= 64 else None,
            stage=stage,
            error_kind=failure.kind.value,
            reason=redact_text(failure.message)[:2000] or failure.kind.value,
            failed_at=now(),
        )
    except ValidationError:
        return None


class DlqPolicy:
    """Counts valid and invalid records; raises when input looks like nothing but garbage.

    Two limits, as in arroyo: ``max_consecutive`` invalid records in a row, and an invalid
    share above ``max_ratio`` over the last ``window`` records (checked once the window is full).
    """

    def __init__(self, settings: DlqSettings) -> None:
        self._settings = settings
        self._consecutive = 0
        self._recent: collections.deque[bool] = collections.deque(maxlen=settings.window)
        self._invalid_in_window = 0

    def _push(self, invalid: bool) -> None:
        if len(self._recent) == self._recent.maxlen and self._recent[0]:
            self._invalid_in_window -= 1
        self._recent.append(invalid)
        self._invalid_in_window += invalid

    def snapshot(self) -> tuple[int, list[bool], int]:
        """The counts now, to :meth:`restore` when the records since are read again."""
        return self._consecutive, list(self._recent), self._invalid_in_window

    def restore(self, state: tuple[int, list[bool], int]) -> None:
        self._consecutive, recent, self._invalid_in_window = state
        self._recent.clear()
        self._recent.extend(recent)

    def record_valid(self) -> None:
        self._consecutive = 0
        self._push(False)

    def check_invalid(self, stage: str, kind: ErrorKind) -> None:
        """Account for one invalid record; raise :class:`DlqLimitExceeded` past a limit.

        Call before sending the record to the DLQ: the record that trips the limit is not
        dead-lettered nor committed, so it is read again once the input is fixed. A valid
        record whose product never arrived (:data:`NOT_GARBAGE`) does not count: a catalog
        outage must not stop the stage that reports it.
        """
        if kind in NOT_GARBAGE:
            return
        s = self._settings
        if self._consecutive + 1 >= s.max_consecutive:
            raise DlqLimitExceeded(
                f"stage {stage!r}: {self._consecutive + 1} invalid records in a row "
                f"(limit dlq.max_consecutive={s.max_consecutive}); stopping instead of draining "
                "the topic into the DLQ. Check what is producing to the input topic."
            )
        window_full = len(self._recent) + 1 >= (self._recent.maxlen or 0)
        ratio = (self._invalid_in_window + 1) / (len(self._recent) + 1)
        if window_full and ratio > s.max_ratio:
            raise DlqLimitExceeded(
                f"stage {stage!r}: {ratio:.0%} of the last {len(self._recent) + 1} records were "
                f"invalid (limit dlq.max_ratio={s.max_ratio}); stopping."
            )
        self._consecutive += 1
        self._push(True)

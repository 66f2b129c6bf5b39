"""Dead-letter envelopes and the limits that stop a stage fed only garbage.

An envelope's payload and message pass through :mod:`streams.redact` (URL user info,
credential query parameters, the ``dlq.redact_fields`` values) before any truncation.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from schemas.base import now
from schemas.dlq import DlqEnvelope, ErrorKind
from streams.config import DlqSettings
from streams.exceptions import DlqLimitExceeded
from streams.redact import REDACTED, redact_payload, redact_text

__all__ = ["NOT_GARBAGE", "REDACTED", "DlqPolicy", "Failure", "make_envelope"]

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


def make_envelope(stage: str, failure: Failure, settings: DlqSettings) -> DlqEnvelope:
    raw = failure.value or b""
    shown = redact_payload(raw, settings.redact_fields)
    cut = shown[: settings.payload_max_bytes]
    return DlqEnvelope(
        stage=stage,
        topic=failure.topic,
        partition=failure.partition,
        offset=failure.offset,
        error_kind=failure.kind,
        message=redact_text(failure.message)[:8000],
        key=failure.key.decode("utf-8", "replace")[:512] if failure.key else None,
        payload=cut.decode("utf-8", "replace"),
        payload_truncated=len(cut) < len(shown),
        payload_bytes=len(raw),
        failed_at=now(),
    )


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

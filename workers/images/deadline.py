"""One wall-clock deadline for a whole image fetch.

A fetch resolves, connects, shakes hands, sends, reads the status line and headers, reads the
body (chunked or not) and follows redirects; each phase gets only the time left of one budget
(``images.timeout_s``), so a server or resolver that trickles bytes cannot hold a batch past
it. The error names the phase the deadline ran out in.
"""

from __future__ import annotations

import time

from workers.images.errors import ImageFetchError


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds
        #: What the fetch is doing, for the error message ("reading the body").
        self.phase = "starting"

    def enter(self, phase: str) -> float:
        """Start ``phase``; returns the seconds left (raises if none are)."""
        self.phase = phase
        return self.remaining()

    def remaining(self) -> float:
        """Seconds left; raises the deadline's :class:`ImageFetchError` when none are."""
        left = self._end - time.monotonic()
        if left <= 0:
            raise self.exceeded()
        return left

    def exceeded(self) -> ImageFetchError:
        return ImageFetchError(
            f"fetch deadline of {self.seconds:g} s (images.timeout_s) exceeded while {self.phase}"
        )

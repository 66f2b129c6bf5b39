"""The liveness watchdog: ends a worker whose stage stopped making progress.

Each loop of a :class:`~streams.runner.StageRunner` (the poll loop, the processing loop)
reports a *beat* with what it is doing; a loop that reports nothing for ``stall_timeout_s``
(:class:`~streams.config.BatchSettings`; 0 disables) is stalled: a model call that never
returns, a lock never released, a client call that hangs. The watchdog then logs one error
line naming the stage, the loop and what it was doing, and ends the process with
:data:`STALL_EXIT` (``ExitCode.STAGE_FAILED``) for its supervisor to restart it. It uses
``os._exit``: a stalled thread cannot be joined or interrupted, so an orderly shutdown would
hang on it too. Nothing of the stalled batch was committed, so it is read again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from streams import metrics

log = logging.getLogger(__name__)
#: The exit code of a stalled worker: ``caslie.exit_codes.ExitCode.STAGE_FAILED``.
STALL_EXIT = 70


def _exit(message: str) -> None:
    log.error("%s; exiting %d", message, STALL_EXIT)
    logging.shutdown()  # flush the handlers: os._exit skips it
    os._exit(STALL_EXIT)


class Watchdog:
    """Watches the beats of named loops; ``on_stall`` is told once, with the error line."""

    def __init__(
        self, stage: str, timeout_s: float, on_stall: Callable[[str], None] = _exit
    ) -> None:
        self.stage = stage
        self.timeout_s = timeout_s
        self._on_stall = on_stall
        self._beats: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"{stage}-watchdog", daemon=True)

    def beat(self, loop: str, doing: str) -> None:
        """``loop`` is alive and now ``doing`` this."""
        with self._lock:
            self._beats[loop] = (time.monotonic(), doing)

    def done(self, loop: str) -> None:
        """``loop`` ended normally: no longer watched."""
        with self._lock:
            self._beats.pop(loop, None)

    def start(self) -> Watchdog:
        if self.timeout_s > 0:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def stalled(self) -> str | None:
        """The error line for the first loop past the timeout, if any."""
        now = time.monotonic()
        with self._lock:
            beats = list(self._beats.items())
        for loop, (at, doing) in beats:
            if now - at > self.timeout_s:
                return (
                    f"stage {self.stage} stalled: its {loop} loop made no progress for "
                    f"{now - at:.0f}s (stall_timeout_s={self.timeout_s:g}) while {doing}"
                )
        return None

    def _watch(self) -> None:
        every = min(1.0, self.timeout_s / 4)
        while not self._stop.wait(every):
            message = self.stalled()
            if message is not None:
                metrics.STAGE_STALLS.labels(self.stage).inc()
                self._on_stall(message)
                return

"""A :class:`~streams.runner.StageRunner` on a :class:`~tests.support.memory_broker.MemoryBroker`,
run in the background, for the runner's unit tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

import orjson

from streams.config import BatchSettings, Settings
from streams.runner import StageRunner
from streams.stage import Stage
from streams.topics import topic_name
from tests.support.memory_broker import MemoryBroker, MemoryClients

#: Hang guard, not a performance bound: how long a test waits for something to happen.
HANG_S = 10.0


def make_runner(
    stage: Stage, settings: Settings, clients: MemoryClients, group: str
) -> StageRunner:
    return StageRunner(stage, settings, group_id=group, clients=clients)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = HANG_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.005)


class Running:
    """``with Running(runner) as run:`` runs it on a thread; leaving stops it and waits for
    ``run()`` to return (re-raising its error unless the test took it with :meth:`join`)."""

    def __init__(self, runner: StageRunner) -> None:
        self.runner = runner
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._taken = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.runner.run(self.stop)
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float = HANG_S) -> BaseException | None:
        """Wait for ``run()`` to return by itself; its error, if any."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"run() did not return within {timeout} s"
        self._taken = True
        return self.error

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop.set()
        self.thread.join(HANG_S)
        if kind is None:
            assert not self.thread.is_alive(), f"run() did not return within {HANG_S} s of stop"
            if self.error is not None and not self._taken:
                raise self.error


def memory_settings(delivery: str = "at_least_once", **batch: int) -> Settings:
    """Settings for a runner on the memory broker; ``batch`` overrides the batching."""
    sizes = {"max_batch": 4, "max_wait_ms": 5, "max_in_flight": 1000, **batch}
    return Settings(
        topic_prefix="mem.",
        delivery=delivery,
        instance_id="test-0",
        batch=BatchSettings(**sizes),
    )


def output_ids(broker: MemoryBroker, settings: Settings, read_committed: bool = True) -> list[str]:
    """Request ids of the copy stage's outputs, in log order."""
    values = broker.values(topic_name(settings, "captioned"), read_committed)
    return [orjson.loads(v)["request_id"] for v in values]

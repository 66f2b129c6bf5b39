"""The liveness watchdog: a stage that stops making progress ends its worker with 70."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from caslie.exit_codes import ExitCode
from streams.runner.watchdog import STALL_EXIT, Watchdog

#: A worker on the in-memory broker whose stage blocks forever in its first batch.
_STALLED_WORKER = textwrap.dedent(
    """
    import threading

    from schemas.records import LabelEvent
    from streams.codec import encode
    from streams.config import BatchSettings, Settings
    from streams.runner import StageRunner
    from streams.topics import topic_name
    from tests.support.memory_broker import MemoryBroker, MemoryClients

    class Stuck:
        name = "stuck"
        input_topics = ("labels",)

        def process(self, batch):
            threading.Event().wait()  # never returns

    settings = Settings(stage_batch={"stuck": BatchSettings(stall_timeout_s=1.0, max_wait_ms=10)})
    broker = MemoryBroker()
    label = LabelEvent(request_id="r1", task="SA", label="A")
    broker.append(topic_name(settings, "labels"), encode(label), b"r1")
    StageRunner(Stuck(), settings, clients=MemoryClients(broker)).run(threading.Event())
    """
)


def test_a_stage_blocked_in_process_ends_the_worker_with_70_within_the_timeout() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _STALLED_WORKER], capture_output=True, text=True, timeout=60
    )
    took = time.monotonic() - started
    assert done.returncode == ExitCode.STAGE_FAILED == STALL_EXIT, done.stderr[-2000:]
    assert "stage stuck stalled: its process loop" in done.stderr
    assert "processing a batch of 1 records" in done.stderr
    assert took < 30  # interpreter start and imports included; the timeout is 1 s


def test_beats_keep_it_quiet_and_a_finished_loop_is_not_watched() -> None:
    dog = Watchdog("s", 0.05, on_stall=lambda message: None)
    dog.beat("poll", "polling")
    assert dog.stalled() is None
    time.sleep(0.08)
    assert dog.stalled() is not None and "while polling" in (dog.stalled() or "")
    dog.done("poll")
    assert dog.stalled() is None

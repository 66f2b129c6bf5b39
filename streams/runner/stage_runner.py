"""The runner: a poller, a dispatcher and a commit strategy around one stage."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from streams import metrics
from streams.clients import consumer_config, producer_config
from streams.config import Settings
from streams.exceptions import DeliveryFailed
from streams.offsets import OffsetTracker
from streams.runner.clients import Clients, KafkaClients
from streams.runner.commit import AtLeastOnce, CommitStrategy, Transactional
from streams.runner.dispatch import Dispatcher
from streams.runner.handoff import Chunk, Handoff
from streams.runner.polling import Poller
from streams.runner.watchdog import Watchdog
from streams.stage import Stage, WarmingStage
from streams.topics import topic_name

log = logging.getLogger(__name__)

#: Longest a stopping worker waits for its last outputs to be acknowledged.
SHUTDOWN_FLUSH_S = 15.0
_LAG_INTERVAL_S = 1.0


def transactional_id(settings: Settings, group_id: str) -> str:
    """Stable per replica when ``instance_id`` is set (a restart then fences its predecessor
    and aborts its open transaction at once); otherwise unique per process, and an open
    transaction of a killed process blocks ``read_committed`` readers of its output
    partitions until ``transaction.timeout.ms`` passes."""
    instance = settings.instance_id or f"{socket.gethostname()}-{os.getpid()}"
    return f"{group_id}.{instance}"


class StageRunner:
    """Consume ``stage.input_topics``, process in batches, produce, commit.

    ``run`` blocks until ``stop`` is set or a fatal error occurs (re-raised). ``clients`` is
    the seam for an in-memory broker in tests; ``on_batch`` is told each batch's size.
    """

    def __init__(
        self,
        stage: Stage,
        settings: Settings,
        group_id: str | None = None,
        on_batch: Callable[[int], None] | None = None,
        clients: Clients | None = None,
    ) -> None:
        self.stage = stage
        self.settings = settings
        self.group_id = group_id or f"{settings.topic_prefix}{stage.name}"
        self.batch = settings.batch_for(stage.name)
        self._on_batch = on_batch
        self.watchdog = Watchdog(stage.name, self.batch.stall_timeout_s)
        self._fatal: BaseException | None = None
        self._stop_processing = threading.Event()
        self.exactly_once = settings.delivery == "exactly_once"
        clients = clients or KafkaClients()
        labels = {"stage": stage.name}
        tracker = OffsetTracker()
        self._handoff = Handoff()
        self._tracker = tracker
        txn_id = transactional_id(settings, self.group_id)
        producer_extra: dict[str, object] = {}
        if self.exactly_once:
            producer_extra = {
                "transactional.id": txn_id,
                "transaction.timeout.ms": settings.transaction_timeout_ms,
            }
        self._producer = clients.producer(producer_config(settings, **producer_extra))
        consumer = clients.consumer(consumer_config(settings, self.group_id))
        topics = [topic_name(settings, t) for t in stage.input_topics]
        self._poller = Poller(
            consumer, topics, self.batch, tracker, self._handoff, labels, self.fail
        )
        self._dispatcher = Dispatcher(stage, settings, self._producer, tracker, self.fail)
        self._strategy: CommitStrategy
        if self.exactly_once:
            self._strategy = Transactional(
                self._producer,
                tracker,
                labels,
                self.failing,
                self._poller.rewind,
                txn_id,
                settings.transaction_timeout_ms / 1000,
            )
        else:
            self._strategy = AtLeastOnce(self._producer, tracker, labels, self.failing)

    def fail(self, exc: BaseException) -> None:
        """Stop the stage with ``exc`` (the first one reported wins)."""
        if self._fatal is None:
            self._fatal = exc

    def failing(self) -> bool:
        return self._fatal is not None

    # -- poll thread -------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        watchdog = self.watchdog
        watchdog.beat("poll", "starting")
        watchdog.start()
        try:
            self._run(stop)
        finally:
            watchdog.stop()

    def _run(self, stop: threading.Event) -> None:
        self._strategy.start()
        self._poller.subscribe(self._strategy)
        self.watchdog.beat("process", "starting")
        worker = threading.Thread(target=self._process_loop, name=f"{self.stage.name}-process")
        worker.start()
        last_lag = time.monotonic()
        try:
            while not stop.is_set() and self._fatal is None:
                self.watchdog.beat("poll", "polling its consumer")
                self._poller.poll_once()
                if time.monotonic() - last_lag >= _LAG_INTERVAL_S:
                    self._poller.report_lag()
                    last_lag = time.monotonic()
        except BaseException as exc:
            self.fail(exc)
        finally:
            self._shut_down(worker)
        if self._fatal is not None:
            raise self._fatal

    def _shut_down(self, worker: threading.Thread) -> None:
        """Finish the batch in progress (serving its commit), deliver what it produced,
        commit, leave the group. Records still buffered are left for the next owner, so
        this takes about one batch, not the buffer's worth."""
        self._stop_processing.set()
        consumer = self._poller.consumer
        while worker.is_alive():
            self.watchdog.beat("poll", "shutting down (waiting for the batch in progress)")
            self._strategy.on_poll(consumer)
            worker.join(0.01)
        left = self._producer.flush(SHUTDOWN_FLUSH_S)
        if left:
            log.warning("%d outputs unacknowledged at shutdown: read again after restart", left)
        try:
            self._strategy.close(consumer, commit=not isinstance(self._fatal, DeliveryFailed))
        except BaseException as exc:
            self.fail(exc)
        consumer.close()

    # -- processing thread -------------------------------------------------------------

    def _warmed_up(self) -> bool:
        """Wait for a :class:`WarmingStage`; ``False`` if told to stop meanwhile."""
        if not isinstance(self.stage, WarmingStage):
            return True
        while not self.stage.ready(0.2):
            self.watchdog.beat("process", "warming up (stage not ready yet)")
            if self._stop_processing.is_set() or self._fatal is not None:
                return False
        return True

    def _process_loop(self) -> None:
        current = self._current
        beat = self.watchdog.beat
        try:
            if not self._warmed_up():
                return
            while not self._stop_processing.is_set() and self._fatal is None:
                beat("process", "waiting for records")
                self._producer.poll(0)
                chunks = self._handoff.take(
                    self.batch.max_batch, self.batch.max_wait_ms / 1000, current
                )
                if chunks:
                    size = sum(len(c.messages) for c in chunks)
                    beat("process", f"processing a batch of {size} records")
                    metrics.BATCH_WAIT.labels(self.stage.name).observe(self._handoff.last_fill_s)
                    if not self._strategy.process(chunks, self._dispatcher.process):
                        self._dispatcher.undo()  # aborted: the records will be read again
                    if self._on_batch is not None:
                        self._on_batch(size)
        except BaseException as exc:
            log.error("stage %s stopped: %s", self.stage.name, exc)
            self.fail(exc)
        finally:
            self.watchdog.done("process")

    def _current(self, chunk: Chunk) -> bool:
        return self._tracker.current(chunk.tp, chunk.epoch)

"""Live adapter reload for predictors: follow the ``adapters`` topic, download announced
versions from the registry and switch between batches.

Start. The watcher reads the ``adapters`` topic (compacted, keyed by adapter name) from the
beginning up to the end offsets it found at start, keeps the latest announcement of each name
and loads only those. :meth:`AdapterWatcher.ready` is ``False`` until each of them is loaded,
so the runner waits and ``/readyz`` says not ready: a restarted predictor never answers with
the base model for an adapter that is announced. A version that still cannot be loaded after
``start_attempts`` tries fails the watcher for good (logged, counted in
``caslie_adapter_load_failures_total``): ``ready`` raises, the worker exits non-zero and its
supervisor restarts it, where the problem shows as a crash loop instead of as quiet base-model
answers.

Following. Then every new announcement replaces the one wanted for its name. The new version
is downloaded and loaded while the old one serves, then switched to, and the old one is
unloaded: one version per name stays loaded (two during a load). A failed download or load is
logged, counted and retried with exponential backoff (``retry_delay`` doubling up to
``max_delay``) until it succeeds or a newer announcement replaces it; the old version keeps
serving meanwhile. A name first announced while running serves the base model until its
first version is loaded (nothing older exists to serve).

Batches. A batch holds :meth:`AdapterWatcher.pinned` from resolving its adapters to its last
prediction, and the switch and unload take it too, so an in-flight batch finishes on the
version it started with and every prediction names the ``name@vN`` that made it. (The
model's own adapter lock keeps a load from running under a forward pass.)

Errors. A consumer error librdkafka retries by itself is logged. An exception of the consumer
(the broker unreachable, say) is transient: the consumer is closed and a new one resumes from
the positions reached, after a backoff. A fatal consumer error, a missing topic or any other
exception stops the watcher: it is logged, ``caslie_adapter_watcher_errors_total{kind=fatal}``
counts it, ``ready`` raises and :meth:`AdapterWatcher.check` (the predictor calls it at each
batch) raises :class:`~streams.stage.FatalStageError`, so the worker exits non-zero.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

from schemas.records import AdapterAnnouncement
from streams import metrics
from streams.clients import make_consumer
from streams.config import Settings
from streams.lag import partitions
from streams.stage import FatalStageError
from streams.topics import logical_name, topic_name

log = logging.getLogger(__name__)


class AdapterHost(Protocol):
    """The model the adapters are loaded into (:class:`~workers.backends.causal_lm.CausalLM`)."""

    def load_adapter(self, ref: str, path: Path) -> None: ...

    def unload_adapter(self, ref: str) -> None: ...


class WatcherFailed(Exception):
    """The watcher cannot go on; the reason is one line for the log."""


@dataclass(frozen=True)
class _Retry:
    ref: str
    attempts: int
    not_before: float


class AdapterWatcher:
    def __init__(
        self,
        settings: Settings,
        lm: AdapterHost,
        registry: Any,
        cache_dir: Path,
        retry_delay: float = 1.0,
        max_delay: float = 60.0,
        start_attempts: int = 5,
    ) -> None:
        self.settings = settings
        self.lm = lm
        self.registry = registry
        self.cache_dir = cache_dir
        self.retry_delay = retry_delay
        self.max_delay = max_delay
        self.start_attempts = start_attempts
        #: adapter name -> loaded immutable ref
        self.active: dict[str, str] = {}
        self.stop = threading.Event()
        self._topic = topic_name(settings, logical_name(settings, "adapters"))
        #: adapter name -> the latest announcement read
        self._wanted: dict[str, AdapterAnnouncement] = {}
        self._retries: dict[str, _Retry] = {}
        #: partition -> next offset to read (a new consumer resumes there)
        self._positions: dict[int, int] = {}
        #: partition -> end offset at start; ``None`` until taken
        self._ends: dict[int, int] | None = None
        self._caught_up = False
        self._pinned = threading.Lock()
        self._ready = threading.Event()
        self._settled = threading.Event()  # ready or failed
        self._error: str | None = None
        self._thread = threading.Thread(target=self._follow, name="adapter-watcher", daemon=True)

    def start(self) -> AdapterWatcher:
        self._thread.start()
        return self

    def resolve(self, name: str) -> str | None:
        """The ref to use for adapter ``name``; ``None`` (base model) until one is loaded."""
        return self.active.get(name)

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """Hold the current versions: no switch or unload happens meanwhile."""
        with self._pinned:
            yield

    def ready(self, timeout: float) -> bool:
        """``True`` once every adapter announced before the start is loaded; raises
        :class:`FatalStageError` if the watcher failed."""
        self._settled.wait(timeout)
        self.check()
        return self._ready.is_set()

    def check(self) -> None:
        """Raise :class:`FatalStageError` if the watcher stopped on an error."""
        if self._error is not None:
            raise FatalStageError(f"adapter watcher failed: {self._error}")

    # -- the thread ----------------------------------------------------------------------

    def _follow(self) -> None:
        delay = self.retry_delay
        try:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    self._consume()
                except KafkaException as exc:
                    if time.monotonic() - started > self.max_delay:
                        delay = self.retry_delay  # it worked for a while: start over
                    error = exc.args[0] if exc.args else exc
                    if getattr(error, "fatal", lambda: False)():
                        raise WatcherFailed(f"adapters consumer: {error}") from exc
                    metrics.ADAPTER_WATCHER_ERRORS.labels("transient").inc()
                    log.warning("adapters consumer: %s; retrying in %.1fs", error, delay)
                    self.stop.wait(delay)
                    delay = min(delay * 2, self.max_delay)
        except BaseException as exc:
            reason = str(exc) if isinstance(exc, WatcherFailed) else f"{type(exc).__name__}: {exc}"
            metrics.ADAPTER_WATCHER_ERRORS.labels("fatal").inc()
            log.error("adapter watcher stopped: %s", reason)
            self._error = reason
            self._settled.set()

    def _consume(self) -> None:
        consumer = make_consumer(self.settings, None, **{"enable.partition.eof": False})
        try:
            tps = partitions(consumer, self._topic)
            if not tps:
                raise WatcherFailed(
                    f"topic {self._topic} does not exist (run 'caslie topics create')"
                )
            if self._ends is None:
                self._ends = {}
                for tp in tps:
                    low, high = consumer.get_watermark_offsets(tp, timeout=10)
                    self._ends[tp.partition] = high if high > low else -1  # -1: nothing to read
            for tp in tps:
                tp.offset = self._positions.get(tp.partition, OFFSET_BEGINNING)
            consumer.assign(tps)
            while not self.stop.is_set():
                msg = consumer.poll(self._poll_timeout())
                error = msg.error() if msg is not None else None
                if error is not None:
                    if error.fatal():
                        raise WatcherFailed(f"adapters consumer: {error}")
                    metrics.ADAPTER_WATCHER_ERRORS.labels("transient").inc()
                    log.warning("adapters consumer (retried by the client): %s", error)
                elif msg is not None:
                    partition, offset = msg.partition(), msg.offset()
                    assert partition is not None and offset is not None
                    self._positions[partition] = offset + 1
                    self._receive(msg.value())
                if not self._caught_up:
                    self._caught_up = self._reached_ends(consumer, tps)
                if self._caught_up:
                    self._load_due()
        finally:
            consumer.close()

    def _reached_ends(self, consumer: Any, tps: list[TopicPartition]) -> bool:
        assert self._ends is not None
        for tp in consumer.position([TopicPartition(t.topic, t.partition) for t in tps]):
            end = self._ends.get(tp.partition, -1)
            if end >= 0 and tp.offset < end:
                return False
        log.info(
            "adapters topic read up to its end at start: %s",
            ", ".join(f"{a.ref}" for a in self._wanted.values()) or "no adapter announced",
        )
        return True

    def _poll_timeout(self) -> float:
        if not self._retries:
            return 0.2
        due = min(r.not_before for r in self._retries.values()) - time.monotonic()
        return min(0.2, max(0.0, due))

    def _receive(self, raw: bytes | None) -> None:
        try:
            announcement = AdapterAnnouncement.from_json(raw or b"")
        except ValueError:
            log.warning("ignoring an invalid adapter announcement")
            return
        previous = self._wanted.get(announcement.name)
        if previous is not None and previous.ref != announcement.ref:
            self._retries.pop(announcement.name, None)  # a newer announcement replaces it
        self._wanted[announcement.name] = announcement

    def _load_due(self) -> None:
        for name, announcement in list(self._wanted.items()):
            if self.active.get(name) == announcement.ref:
                continue
            retry = self._retries.get(name)
            if retry is not None and time.monotonic() < retry.not_before:
                continue
            failure = self._load(announcement)
            if failure is None:
                self._retries.pop(name, None)
                continue
            attempts = (retry.attempts if retry is not None else 0) + 1
            if not self._ready.is_set() and attempts >= self.start_attempts:
                raise WatcherFailed(
                    f"{announcement.ref} could not be loaded ({attempts} attempts): {failure}"
                )
            delay = min(self.retry_delay * 2 ** (attempts - 1), self.max_delay)
            self._retries[name] = _Retry(announcement.ref, attempts, time.monotonic() + delay)
            log.warning(
                "could not load %s (%s); %s keeps serving, retry %d in %.1fs",
                announcement.ref,
                failure,
                self.active.get(name, "base"),
                attempts,
                delay,
            )
        if not self._ready.is_set() and all(
            self.active.get(n) == a.ref for n, a in self._wanted.items()
        ):
            log.info("adapters loaded: %s", ", ".join(sorted(self.active.values())) or "none")
            self._ready.set()
            self._settled.set()

    def _load(self, announcement: AdapterAnnouncement) -> str | None:
        """Download, load and switch to a version; the failure in one line, or ``None``."""
        name, ref = announcement.name, announcement.ref
        try:
            path = self.registry.download(name, announcement.adapter_version, self.cache_dir)
            self.lm.load_adapter(ref, path)
        except Exception as exc:
            metrics.ADAPTER_LOAD_FAILURES.labels(name).inc()
            return f"{type(exc).__name__}: {exc}"
        with self._pinned:  # no batch is between resolving and predicting
            previous = self.active.get(name)
            self.active[name] = ref
            if previous is not None and previous != ref:
                self.lm.unload_adapter(previous)  # raising here: the model's state is unknown
        metrics.ADAPTER_VERSION.labels(name).set(announcement.adapter_version)
        log.info("%s: now serving %s (was %s)", announcement.action, ref, previous or "base")
        return None

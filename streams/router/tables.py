"""The router's tables: a RocksDB store per replica that follows the changelog topics.

The router writes each change of a table to its changelog topic (``router.products``,
``router.reviews``) as an ordinary output, so in exactly-once mode the change commits in the
same transaction as the requests it caused and the input offsets. A follower thread reads
every partition of the changelogs (``read_committed``) and is the store's only writer: each
replica holds the whole catalog (a global table), whichever input partitions it owns. It
writes each batch of records together with the position it reached per partition
(:mod:`streams.router.store`), so a restart resumes there instead of at offset 0; a state
folder that is missing, unreadable or ahead of its topics is rebuilt from the beginning.

A replica's own changes must be visible at once (a query right behind its product in the
same batch resolves; a review appends to the reviews it just wrote), before the follower
reads them back. :meth:`Table.put` keeps such a change in a small overlay with a token (the
change's dedupe id, unique per input record); reads prefer the overlay, and the follower drops
an entry only when it applies the record carrying that same token, so an older record it
applies meanwhile never hides a newer local change (no lost update). The overlay holds what
the follower has not read yet, nothing more. Changes of an aborted transaction never reach the
follower, and the process that made them stops (the runner exits on an aborted transaction),
losing its overlay with them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Generic, TypeVar

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from pydantic import BaseModel

from streams.clients import make_consumer
from streams.codec import decode
from streams.config import Settings
from streams.exceptions import DecodeFailure, StreamError
from streams.lag import partitions
from streams.router.store import Change, StateStore
from streams.runner import DEDUPE_HEADER
from streams.topics import logical_name, topic_name

log = logging.getLogger(__name__)
V = TypeVar("V", bound=BaseModel)
#: Records applied per store write.
_BATCH = 2000


def state_dir(settings: Settings, configured: Path | None = None, kind: str = "router") -> Path:
    """A replica's state folder: ``configured`` (default ``router.state_dir``), else one per
    topic prefix in the cache folder (``<kind>-state/<prefix>``)."""
    if kind == "router" and configured is None:
        configured = settings.router.state_dir
    if configured is not None:
        return configured
    return settings.cache_dir / f"{kind}-state" / (settings.topic_prefix.rstrip(".") or "default")


class Table(Generic[V]):
    """A view of one table of the store, with this replica's not yet followed changes on top;
    ``None`` is an absent (deleted) key."""

    def __init__(self, logical_topic: str, model: type[V], store: StateStore) -> None:
        self.logical_topic = logical_topic
        self._model = model
        self._store = store
        self._overlay: dict[str, tuple[V | None, str]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        with self._lock:
            if key in self._overlay:
                return self._overlay[key][0]
        raw = self._store.get(self.logical_topic, key)
        if raw is None:
            return None
        try:
            value = decode(raw, self.logical_topic)
        except DecodeFailure as exc:  # only the router writes there; say so, don't stop
            log.warning("%s: unreadable stored record of %s ignored: %s", self, key, exc.message)
            return None
        return value if isinstance(value, self._model) else None

    def put(self, key: str, value: V | None, token: str) -> None:
        """This replica's change, visible at once; ``token``: the dedupe id of the changelog
        record that carries it."""
        with self._lock:
            self._overlay[key] = (value, token)

    def followed(self, key: str, token: str | None) -> None:
        """The follower applied the record of ``key`` with this dedupe id to the store."""
        with self._lock:
            entry = self._overlay.get(key)
            if entry is not None and entry[1] == token:
                del self._overlay[key]

    def all_keys(self) -> list[str]:
        """Every key the table holds, this replica's unfollowed changes included (deleted ones
        too: :meth:`get` says ``None`` for them). A full scan, for sweeps."""
        with self._lock:
            local = list(self._overlay)
        return list(dict.fromkeys([*self._store.all_keys(self.logical_topic), *local]))

    @property
    def pending(self) -> int:
        """Local changes the follower has not read back yet."""
        with self._lock:
            return len(self._overlay)

    def __str__(self) -> str:
        return self.logical_topic


def stored_value(logical_topic: str, value: bytes | None) -> bytes | None:
    """A changelog record's value as the store keeps it: ``None`` deletes the key (a null
    value, JSON ``null``, or the older ``{"deleted": true}`` product)."""
    if value is None or value == b"null":
        return None
    if logical_topic == "router.products" and b'"deleted"' in value:
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value  # kept; reading it says why it is unreadable
        if isinstance(obj, dict) and obj.get("deleted") is True:
            return None
    return value


def _dedupe_id(msg: Message) -> str | None:
    for header in msg.headers() or []:
        if header[0] == DEDUPE_HEADER and isinstance(header[1], bytes):
            return header[1].decode("utf-8", "replace")
    return None


class TableFollower:
    """Reads the changelogs of ``tables`` into ``store``; :meth:`restored` is set once every
    partition was read to its end (the last committed record) after the start."""

    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        tables: Mapping[str, Table[BaseModel]],
        name: str = "router",
    ) -> None:
        self.settings = settings
        #: Whose tables (logs, the thread's name, errors).
        self.name = name
        self.store = store
        self.tables = dict(tables)
        self.restored = threading.Event()
        #: Records applied since the start, and whether the start was a rebuild from offset 0.
        self.applied = 0
        self.cold = False
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._follow, name=f"{name}-tables", daemon=True)

    def start(self) -> TableFollower:
        self._thread.start()
        return self

    def wait_restored(self, timeout: float) -> bool:
        """Whether the tables were restored within ``timeout`` seconds; raises
        :class:`StreamError` if following them failed."""
        restored = self.restored.wait(timeout)
        if not restored and self._error is not None:
            raise StreamError(f"reading the {self.name}'s tables failed: {self._error}")
        return restored

    def close(self, timeout: float = 30) -> None:
        """Stop following and close the store (the process may also just end: every write
        is in RocksDB's log). Once: a second call does nothing."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.store.close()

    def _start_positions(
        self, consumer: Consumer, tps: list[TopicPartition]
    ) -> set[tuple[str, int]]:
        """Set each partition's start offset from the checkpoint; the partitions to read up
        to their end before the tables count as restored."""
        saved = self.store.positions()
        marks = {(tp.topic, tp.partition): _watermarks(consumer, tp) for tp in tps}
        stale = [
            f"{t}[{p}]@{saved[(t, p)]} (topic holds {low}..{high})"
            for (t, p), (low, high) in marks.items()
            if (t, p) in saved and not low <= saved[(t, p)] <= high
        ]
        if stale or not saved:
            reason = f"checkpoint outside its topic: {', '.join(stale)}" if stale else "empty"
            log.info(
                "%s state in %s: %s; rebuilding from offset 0", self.name, self.store.path, reason
            )
            if saved:
                self.store.clear()
            saved = {}
            self.cold = True
        else:
            log.info("%s state in %s: resuming from its checkpoint", self.name, self.store.path)
        for tp in tps:
            tp.offset = saved.get((tp.topic, tp.partition), OFFSET_BEGINNING)
        return {
            where
            for where, (low, high) in marks.items()
            if saved.get(where, low) < high and high > low
        }

    def _follow(self) -> None:
        extra = {"enable.partition.eof": True, "queued.max.messages.kbytes": 16384}
        consumer = make_consumer(self.settings, None, **extra)
        try:
            tps = []
            for logical in self.tables:
                found = partitions(consumer, topic_name(self.settings, logical))
                if not found:
                    raise StreamError(
                        f"topic {topic_name(self.settings, logical)} is missing "
                        "(create the topics with 'caslie topics create')"
                    )
                tps += found
            behind = self._start_positions(consumer, tps)
            consumer.assign(tps)
            while not self._stop.is_set():
                records = []
                for msg in consumer.consume(num_messages=_BATCH, timeout=0.2):
                    err = msg.error()
                    if err is None:
                        records.append(msg)
                    elif err.code() == KafkaError._PARTITION_EOF:
                        behind.discard((msg.topic(), msg.partition()))
                    elif err.fatal():
                        raise StreamError(f"table consumer: {err}")
                    else:
                        log.warning("table consumer (retried by the client): %s", err)
                self.apply(records)
                if not behind and not self.restored.is_set():
                    log.info(
                        "%s tables restored (%s, %d records read): %s",
                        self.name,
                        "rebuilt from offset 0" if self.cold else "from the checkpoint",
                        self.applied,
                        ", ".join(f"{n}~{self.store.count(n)}" for n in self.tables),
                    )
                    self.restored.set()
        except BaseException as exc:
            log.error("%s table follower stopped: %s", self.name, exc)
            self._error = exc
        finally:
            consumer.close()

    def apply(self, messages: Sequence[Message]) -> None:
        """Write records to the store with the positions they reach, then drop the overlay
        entries they carry."""
        if not messages:
            return
        changes: list[Change] = []
        followed: list[tuple[Table[BaseModel], str, str | None]] = []
        positions: dict[tuple[str, int], int] = {}
        for msg in messages:
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            assert topic is not None and partition is not None and offset is not None
            positions[(topic, partition)] = offset + 1
            key, value = msg.key(), msg.value()
            if not isinstance(key, bytes):
                log.warning("%s: record without a key ignored", topic)
                continue
            logical = logical_name(self.settings, topic)
            text = key.decode("utf-8", "replace")
            changes.append((logical, text, stored_value(logical, value)))
            followed.append((self.tables[logical], text, _dedupe_id(msg)))
        self.store.write(changes, positions)
        self.applied += len(changes)
        for table, name, token in followed:
            table.followed(name, token)


#: Errors of a partition that has no leader yet (a topic created a moment ago, a broker
#: restarting): asked again until ``WATERMARK_WAIT_S`` has passed.
_NO_LEADER_YET = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
    }
)
WATERMARK_WAIT_S = 30.0


def _watermarks(consumer: Consumer, tp: TopicPartition) -> tuple[int, int]:
    """The partition's low and high watermarks, waiting out a leader that is not there yet
    (a router started right after ``caslie topics create`` exited 70 otherwise)."""
    deadline = time.monotonic() + WATERMARK_WAIT_S
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            return low, high
        except KafkaException as exc:
            err: KafkaError = exc.args[0]
            if err.code() not in _NO_LEADER_YET or time.monotonic() > deadline:
                raise
            log.info("%s[%d] has no leader yet (%s): asking again", tp.topic, tp.partition, err)
            time.sleep(0.5)

"""The router's tables: in-memory maps that every replica rebuilds from compacted topics.

The router writes each change of a table to its changelog topic (``router.products``,
``router.reviews``) as an ordinary output, so in exactly-once mode the change commits in the
same transaction as the requests it caused and the input offsets. A follower thread reads
every partition of the changelogs (``read_committed``) from the beginning and keeps reading:
each replica sees the whole catalog, whichever partitions of the inputs it owns.

A replica also applies its own changes at once (:meth:`Table.put`), so a query right behind
its product in the same batch resolves. The follower applies the same changes again when it
reads them; while it lags, an older value it reads can briefly replace a newer local one
until it reaches the newer record. Changes of an aborted transaction never reach the
follower, and the process that applied them locally stops (the runner exits on an aborted
transaction) and rebuilds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from confluent_kafka import OFFSET_BEGINNING, KafkaError
from pydantic import BaseModel

from streams.clients import make_consumer
from streams.codec import decode
from streams.config import Settings
from streams.exceptions import DecodeFailure, StreamError
from streams.lag import partitions
from streams.topics import logical_name, topic_name

log = logging.getLogger(__name__)
V = TypeVar("V", bound=BaseModel)


class Table(Generic[V]):
    """A thread-safe map from key to the latest value; ``None`` removes the key."""

    def __init__(self, logical_topic: str, keep: Callable[[V], bool]) -> None:
        self.logical_topic = logical_topic
        #: Values that fail this (a deleted product, say) remove their key.
        self._keep = keep
        self._data: dict[str, V] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        with self._lock:
            return self._data.get(key)

    def put(self, key: str, value: V) -> None:
        with self._lock:
            if self._keep(value):
                self._data[key] = value
            else:
                self._data.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


class TableFollower:
    """Reads the changelogs of ``tables`` into them; :meth:`restored` is set once every
    partition was read to its end (the last committed record) after the start."""

    def __init__(self, settings: Settings, tables: Mapping[str, Table[Any]]) -> None:
        self.settings = settings
        self.tables = dict(tables)
        self.restored = threading.Event()
        self._error: BaseException | None = None
        #: A daemon: it follows for as long as the process lives.
        self._thread = threading.Thread(target=self._follow, name="router-tables", daemon=True)

    def start(self) -> TableFollower:
        self._thread.start()
        return self

    def wait_restored(self, timeout: float) -> bool:
        """Whether the tables were restored within ``timeout`` seconds; raises
        :class:`StreamError` if following them failed."""
        restored = self.restored.wait(timeout)
        if not restored and self._error is not None:
            raise StreamError(f"reading the router's tables failed: {self._error}")
        return restored

    def _follow(self) -> None:
        consumer = make_consumer(self.settings, None, **{"enable.partition.eof": True})
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
            for tp in tps:
                tp.offset = OFFSET_BEGINNING
            consumer.assign(tps)
            behind = {(tp.topic, tp.partition) for tp in tps}
            while True:
                for msg in consumer.consume(num_messages=500, timeout=0.2):
                    err = msg.error()
                    if err is not None and err.code() == KafkaError._PARTITION_EOF:
                        behind.discard((msg.topic(), msg.partition()))
                    elif err is not None and err.fatal():
                        raise StreamError(f"table consumer: {err}")
                    elif err is not None:
                        log.warning("table consumer (retried by the client): %s", err)
                    else:
                        self._apply(msg.topic(), msg.key(), msg.value())
                if not behind and not self.restored.is_set():
                    log.info(
                        "router tables restored: %s",
                        ", ".join(f"{n}={len(t)}" for n, t in self.tables.items()),
                    )
                    self.restored.set()
        except BaseException as exc:
            log.error("router table follower stopped: %s", exc)
            self._error = exc
        finally:
            consumer.close()

    def _apply(self, topic: str | None, key: bytes | None, value: bytes | None) -> None:
        assert topic is not None
        logical = logical_name(self.settings, topic)
        if key is None:
            log.warning("%s: record without a key ignored", topic)
            return
        try:
            record = decode(value, logical)
        except DecodeFailure as exc:  # only the router writes here; say so, don't stop
            log.warning("%s: unreadable table record ignored: %s", topic, exc.message)
            return
        self.tables[logical].put(key.decode(), record)

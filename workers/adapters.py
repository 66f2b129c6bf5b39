"""Live adapter reload for predictors: follow the ``adapters`` topic, download announced
versions from the registry and switch between batches.

A batch holds the model's adapter lock while it runs, and loading takes the same lock, so
in-flight requests finish on the version they started with; every prediction names the
``name@vN`` that made it. A failed load keeps the old version serving (and is logged).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from schemas.records import AdapterAnnouncement
from streams import metrics
from streams.config import Settings
from streams.consume import consume_records

log = logging.getLogger(__name__)


class AdapterWatcher:
    def __init__(self, settings: Settings, lm: Any, registry: Any, cache_dir: Path) -> None:
        self.settings = settings
        self.lm = lm
        self.registry = registry
        self.cache_dir = cache_dir
        #: adapter name -> loaded immutable ref
        self.active: dict[str, str] = {}
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="adapter-watcher", daemon=True)

    def start(self) -> AdapterWatcher:
        self._thread.start()
        return self

    def resolve(self, name: str) -> str | None:
        """The ref to use for adapter ``name``; ``None`` (base model) until one is announced."""
        return self.active.get(name)

    def apply(self, announcement: AdapterAnnouncement) -> None:
        ref = announcement.ref
        try:
            path = self.registry.download(
                announcement.name, announcement.adapter_version, self.cache_dir
            )
            self.lm.load_adapter(ref, path)
        except Exception:
            log.exception(
                "could not load %s; %s keeps serving",
                ref,
                self.active.get(announcement.name, "base"),
            )
            return
        previous = self.active.get(announcement.name)
        self.active[announcement.name] = ref
        metrics.ADAPTER_VERSION.labels(announcement.name).set(announcement.adapter_version)
        log.info("%s: now serving %s (was %s)", announcement.action, ref, previous or "base")

    def _follow(self) -> None:
        for raw in consume_records(self.settings, "adapters", from_beginning=True, stop=self.stop):
            try:
                announcement = AdapterAnnouncement.from_json(raw)
            except ValueError:
                log.warning("ignoring an invalid adapter announcement")
                continue
            self.apply(announcement)

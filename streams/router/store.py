"""One router replica's state on disk: its tables in RocksDB, with the changelog position.

The folder holds a column family per table (values: the changelog records' bytes, which
the router trimmed to what resolution reads) and one, ``positions``, with the next changelog
offset to read per topic partition. :meth:`StateStore.write` puts a batch of changes and the
positions it reaches in one RocksDB write batch: after a crash the folder holds either both or
neither, so a restart resumes each partition where its data stops.

Memory does not grow with the catalog: the block cache and the write buffers (charged to the
same cache) are sized by :class:`~streams.config.RouterSettings`, the rest stays on disk.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from rocksdict import (
    BlockBasedIndexType,
    BlockBasedOptions,
    Cache,
    DBCompressionType,
    Options,
    Rdict,
    WriteBatch,
    WriteBufferManager,
)

from streams.config import RouterSettings

log = logging.getLogger(__name__)

#: Logical changelog topic -> its column family.
FAMILIES = {
    "router.products": "products",
    "router.reviews": "reviews",
    "router.claims": "claims",
    "router.listings": "listings",
    "router.aspect_schemas": "aspect_schemas",
    "router.rejected": "rejected",
}
_POSITIONS = "positions"
_MB = 1 << 20

#: One change of a table: (logical topic, key, value bytes or ``None`` for a delete).
Change = tuple[str, str, bytes | None]
#: (topic, partition) -> the next offset to read there.
Positions = Mapping[tuple[str, int], int]


def _options(settings: RouterSettings, cache: Cache) -> Options:
    """Index and bloom filters are partitioned into small blocks charged to the block cache
    (only their top level is pinned), so memory stays bounded at any catalog size. A whole
    filter of one large file (1.25 MB for 1M products) does not fit a shard of the cache
    (the cache has 64), was never kept, and was read again for every lookup: random reads
    of 1M products ran at about 1,000/s that way, 170,000/s partitioned."""
    opts = Options(raw_mode=True)
    table = BlockBasedOptions()
    table.set_block_cache(cache)
    table.set_cache_index_and_filter_blocks(True)
    table.set_bloom_filter(10, False)
    table.set_index_type(BlockBasedIndexType.two_level_index_search())
    table.set_partition_filters(True)
    table.set_metadata_block_size(4096)
    table.set_pin_top_level_index_and_filter(True)
    table.set_pin_l0_filter_and_index_blocks_in_cache(True)
    table.set_format_version(5)
    opts.set_block_based_table_factory(table)
    opts.set_write_buffer_size(settings.state_write_buffer_mb * _MB // 2)
    opts.set_max_write_buffer_number(2)
    opts.set_compression_type(DBCompressionType.lz4())
    return opts


class StateStore:
    """The RocksDB folder of one replica; one writer (the changelog follower), any readers."""

    def __init__(
        self, path: Path, settings: RouterSettings, families: Mapping[str, str] = FAMILIES
    ) -> None:
        self.path = path
        self._settings = settings
        #: Logical changelog topic -> its column family (the router's by default; the
        #: accumulator's store has its own).
        self.families = dict(families)
        self._open()

    def _open(self) -> None:
        settings, path = self._settings, self.path
        cache = Cache(settings.state_cache_mb * _MB)
        opts = _options(settings, cache)
        opts.create_if_missing(True)
        opts.create_missing_column_families(True)
        opts.set_max_background_jobs(2)
        opts.set_keep_log_file_num(2)
        # memtables count against the block cache: one bound for both
        opts.set_write_buffer_manager(
            WriteBufferManager.new_write_buffer_manager_with_cache(
                settings.state_write_buffer_mb * _MB, False, cache
            )
        )
        names = (*self.families.values(), _POSITIONS)
        families = {name: _options(settings, cache) for name in names}
        path.mkdir(parents=True, exist_ok=True)
        self._db = Rdict(str(path), opts, column_families=families)
        self._families = {name: self._db.get_column_family(name) for name in families}
        self._handles = {name: self._db.get_column_family_handle(name) for name in families}

    @classmethod
    def open(
        cls, path: Path, settings: RouterSettings, families: Mapping[str, str] = FAMILIES
    ) -> StateStore:
        """Open the folder; one that RocksDB cannot open (corrupt, another format) is removed
        and started anew: the follower then rebuilds it from the changelogs' beginning."""
        try:
            return cls(path, settings, families)
        except Exception as exc:
            if "lock" in str(exc).lower():  # another replica uses it: never remove it
                raise
            log.warning("state in %s unreadable (%s): rebuilding it", path, exc)
            shutil.rmtree(path, ignore_errors=True)
            return cls(path, settings, families)

    def get(self, logical_topic: str, key: str) -> bytes | None:
        value: bytes | None = self._families[self.families[logical_topic]].get(key.encode())
        return value

    def all_keys(self, logical_topic: str) -> list[str]:
        """Every key of a table (a full scan: for sweeps over small tables, not lookups)."""
        family = self._families[self.families[logical_topic]]
        return [k.decode() for k in family.keys() if isinstance(k, bytes)]  # noqa: SIM118

    def positions(self) -> dict[tuple[str, int], int]:
        """Where each changelog partition's data stops: the next offset to read there."""
        found = {}
        for raw_key, raw_value in self._families[_POSITIONS].items():
            assert isinstance(raw_key, bytes) and isinstance(raw_value, bytes)
            topic, _, partition = raw_key.decode().rpartition(":")
            found[(topic, int(partition))] = int(raw_value)
        return found

    def write(self, changes: Iterable[Change], positions: Positions) -> None:
        """Apply ``changes`` in order and record ``positions``, atomically."""
        batch = WriteBatch(raw_mode=True)
        for logical, key, value in changes:
            handle = self._handles[self.families[logical]]
            if value is None:
                batch.delete(key.encode(), handle)
            else:
                batch.put(key.encode(), value, handle)
        where = self._handles[_POSITIONS]
        for (topic, partition), offset in positions.items():
            batch.put(f"{topic}:{partition}".encode(), str(offset).encode(), where)
        self._db.write(batch)

    def clear(self) -> None:
        """Forget every table and position (before a rebuild from the beginning); nothing may
        read the store meanwhile."""
        self.close()
        shutil.rmtree(self.path)
        self._open()

    def count(self, logical_topic: str) -> int:
        """RocksDB's estimate of the keys in a table (for logs and the bench)."""
        family = self._families[self.families[logical_topic]]
        return int(family.property_int_value("rocksdb.estimate-num-keys") or 0)

    def close(self) -> None:
        for family in self._families.values():
            family.close()
        self._db.close()
        self._families.clear()
        self._handles.clear()

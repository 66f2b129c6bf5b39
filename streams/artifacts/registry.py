"""The adapter registry: immutable, numbered adapter versions (``name@vN``) with their
metrics and the data snapshot they were trained on.

Layout (in a folder or an S3 prefix)::

    <name>/v<N>/files/<adapter files>
    <name>/v<N>/manifest.json     written last: a version exists once its manifest does
    <name>/v<N>/summary.json      the run that trained it (metrics, data snapshot, timings)
    <name>/current                the promoted version number (promotion, rollback)
    <name>/runs/<UTC time>.json   every retraining run's summary, published or not

Files are written before the manifest, and the manifest lists every file with its sha256,
so a reader never sees half an adapter and verifies what it downloads. A manifest is data from
the registry, not trusted: its file names must be plain relative names (``a/b.bin``; no
absolute path, ``..``, ``.``, backslash or empty part) and its name and version those asked
for, or it is refused before anything is written.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streams.artifacts.storage import Storage

#: Folders of the store that are not adapters: the accumulated datasets, training checkpoints.
RESERVED = frozenset({"datasets", "checkpoints"})
_VERSION = re.compile(r"^(?P<name>[^/]+)/v(?P<n>\d+)/manifest\.json$")


class RegistryError(Exception):
    pass


def _check_file_name(ref: str, rel: str) -> None:
    """Refuse a manifest file name that is not a plain relative name inside the version."""
    parts = rel.split("/")
    if (
        not rel
        or "\\" in rel
        or "\0" in rel
        or rel.startswith("/")
        or any(part in ("", ".", "..") for part in parts)
        or parts[0] == ".complete"
    ):
        raise RegistryError(f"{ref}: the manifest names an unsafe file path {rel!r}")


@dataclass(frozen=True)
class AdapterVersion:
    name: str
    version: int
    base_model: str
    metrics: dict[str, Any] = field(default_factory=dict)
    data_snapshot: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"

    @property
    def fingerprint(self) -> str:
        """A short hash of the adapter's files (from the manifest digests)."""
        listing = "\n".join(f"{rel} {digest}" for rel, digest in sorted(self.files.items()))
        return hashlib.sha256(listing.encode()).hexdigest()[:16]


class AdapterRegistry:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def versions(self, name: str) -> list[int]:
        found = []
        for key in self.storage.list(f"{name}/"):
            match = _VERSION.match(key)
            if match and match["name"] == name:
                found.append(int(match["n"]))
        return sorted(found)

    def get(self, name: str, version: int) -> AdapterVersion:
        key = f"{name}/v{version}/manifest.json"
        if not self.storage.exists(key):
            raise RegistryError(f"{name}@v{version} does not exist")
        try:
            entry = AdapterVersion(**orjson.loads(self.storage.get(key)))
        except (TypeError, orjson.JSONDecodeError) as exc:
            raise RegistryError(f"{name}@v{version}: unreadable manifest ({exc})") from None
        if (entry.name, entry.version) != (name, version):
            raise RegistryError(f"{name}@v{version}: the manifest describes {entry.ref}")
        for rel in entry.files:
            _check_file_name(entry.ref, rel)
        return entry

    def publish(
        self,
        name: str,
        folder: Path,
        base_model: str,
        metrics: dict[str, Any] | None = None,
        data_snapshot: dict[str, Any] | None = None,
    ) -> AdapterVersion:
        """Store the adapter in ``folder`` as the next version of ``name``."""
        if "@" in name or "/" in name:
            raise RegistryError(f"adapter name {name!r} may not contain '@' or '/'")
        if name in RESERVED:
            raise RegistryError(f"adapter name {name!r} is reserved (the store's own folder)")
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        if not any(p.name == "adapter_config.json" for p in files):
            raise RegistryError(f"{folder} holds no adapter_config.json")
        version = (self.versions(name) or [0])[-1] + 1
        prefix = f"{name}/v{version}"
        digests = {}
        for path in files:
            data = path.read_bytes()
            rel = str(path.relative_to(folder))
            self.storage.put(f"{prefix}/files/{rel}", data)
            digests[rel] = hashlib.sha256(data).hexdigest()
        entry = AdapterVersion(
            name, version, base_model, metrics or {}, data_snapshot or {}, digests, time.time()
        )
        self.storage.put(f"{prefix}/manifest.json", orjson.dumps(entry.__dict__))
        return entry

    def download(self, name: str, version: int, dest: Path) -> Path:
        """Copy a version into ``dest/<name>@v<N>-<fingerprint>`` (verified; reused when
        present). The fingerprint hashes the manifest's file digests: ``name@vN`` is unique
        only within one registry, so a cache shared by several registries must not reuse a
        folder by name alone.

        Each call writes into its own temporary folder in ``dest`` and renames it into place,
        so concurrent downloads of one version (threads or processes) never mix their files:
        the first rename wins and the others use its folder. A failed download leaves
        nothing behind."""
        entry = self.get(name, version)  # file names checked
        target = dest / f"{entry.ref}-{entry.fingerprint}"
        if (target / ".complete").is_file():
            return target
        dest.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=dest))
        try:
            for rel, digest in entry.files.items():
                data = self.storage.get(f"{name}/v{version}/files/{rel}")
                if hashlib.sha256(data).hexdigest() != digest:
                    raise RegistryError(f"{entry.ref}: {rel} does not match its manifest")
                out = partial / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(data)
            (partial / ".complete").write_text(entry.ref)
            try:
                os.rename(partial, target)
            except OSError:
                if not (target / ".complete").is_file():  # not another download's result
                    raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)  # gone already when renamed
        return target

    def record_run(self, name: str, summary: bytes, version: int | None = None) -> str:
        """Keep a retraining run's summary: in ``runs/`` always, and beside ``version`` when
        the run published one. Returns the ``runs/`` key."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        key = f"{name}/runs/{stamp}-{hashlib.sha256(summary).hexdigest()[:8]}.json"
        self.storage.put(key, summary)
        if version is not None:
            self.storage.put(f"{name}/v{version}/summary.json", summary)
        return key

    def runs(self, name: str) -> list[str]:
        """The keys of ``name``'s run summaries, oldest first."""
        return [k for k in self.storage.list(f"{name}/runs/") if k.endswith(".json")]

    def current(self, name: str) -> int | None:
        key = f"{name}/current"
        return int(self.storage.get(key)) if self.storage.exists(key) else None

    def set_current(self, name: str, version: int) -> None:
        self.get(name, version)  # must exist
        self.storage.put(f"{name}/current", str(version).encode())

    def previous(self, name: str) -> int | None:
        """The version a rollback makes current: the newest before the current one (with no
        current version, the newest); None when there is none."""
        current = self.current(name)
        older = [v for v in self.versions(name) if current is None or v < current]
        return older[-1] if older else None

    def rollback(self, name: str) -> int:
        """Make the version before the current one current again; returns it."""
        version = self.previous(name)
        if version is None:
            raise RegistryError(
                f"{name} has no version before v{self.current(name)} to roll back to"
            )
        self.set_current(name, version)
        return version

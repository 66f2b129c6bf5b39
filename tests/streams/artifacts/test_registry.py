"""The adapter registry on a local folder and on moto's standalone S3 server."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from pathlib import Path

import pytest

from streams.artifacts.registry import AdapterRegistry, RegistryError
from streams.artifacts.storage import LocalStorage, S3Storage, Storage, open_storage


def _adapter(folder: Path, marker: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 16, "marker": marker}))
    (folder / "adapter_model.safetensors").write_bytes(marker.encode() * 100)
    return folder


@pytest.fixture(params=["local", "s3"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> AdapterRegistry:
    if request.param == "local":
        return AdapterRegistry(LocalStorage(tmp_path / "registry"))
    endpoint = request.getfixturevalue("moto_s3")
    import boto3

    bucket = f"adapters-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    storage = open_storage(f"s3://{bucket}/team/caslie", s3_endpoint_url=endpoint)
    assert isinstance(storage, S3Storage)
    return AdapterRegistry(storage)


def test_versions_are_immutable_and_numbered(registry: AdapterRegistry, tmp_path: Path) -> None:
    v1 = registry.publish(
        "generalist",
        _adapter(tmp_path / "a", "one"),
        "smollm2",
        metrics={"SA": 0.5},
        data_snapshot={"records": 10},
    )
    v2 = registry.publish("generalist", _adapter(tmp_path / "b", "two"), "smollm2")
    assert (v1.ref, v2.ref) == ("generalist@v1", "generalist@v2")
    assert registry.versions("generalist") == [1, 2]
    assert registry.get("generalist", 1).metrics == {"SA": 0.5}
    assert registry.get("generalist", 1).data_snapshot == {"records": 10}
    local = registry.download("generalist", 1, tmp_path / "cache")
    assert json.loads((local / "adapter_config.json").read_text())["marker"] == "one"
    assert registry.download("generalist", 1, tmp_path / "cache") == local  # reused


def test_same_ref_from_another_registry_is_not_reused_from_the_cache(tmp_path: Path) -> None:
    """Found by a real run: ``sa@v1`` of a test registry was served from the shared cache
    in place of ``sa@v1`` of the production registry."""
    first = AdapterRegistry(LocalStorage(tmp_path / "first"))
    second = AdapterRegistry(LocalStorage(tmp_path / "second"))
    first.publish("sa", _adapter(tmp_path / "a", "first"), "m")
    second.publish("sa", _adapter(tmp_path / "b", "second"), "m")
    cache = tmp_path / "cache"
    from_first = first.download("sa", 1, cache)
    from_second = second.download("sa", 1, cache)
    assert from_first != from_second
    assert json.loads((from_second / "adapter_config.json").read_text())["marker"] == "second"


def test_a_version_without_manifest_does_not_exist(
    registry: AdapterRegistry, tmp_path: Path
) -> None:
    registry.publish("g", _adapter(tmp_path / "a", "one"), "m")
    registry.storage.put("g/v2/files/adapter_config.json", b"{}")  # a publish cut short
    assert registry.versions("g") == [1]
    with pytest.raises(RegistryError, match="does not exist"):
        registry.get("g", 2)


def test_corrupted_file_is_detected(registry: AdapterRegistry, tmp_path: Path) -> None:
    registry.publish("g", _adapter(tmp_path / "a", "one"), "m")
    registry.storage.put("g/v1/files/adapter_model.safetensors", b"tampered")
    with pytest.raises(RegistryError, match="does not match"):
        registry.download("g", 1, tmp_path / "cache")


def test_promotion_and_rollback(registry: AdapterRegistry, tmp_path: Path) -> None:
    for i in range(3):
        registry.publish("g", _adapter(tmp_path / str(i), str(i)), "m")
    assert registry.current("g") is None
    registry.set_current("g", 3)
    assert registry.rollback("g") == 2
    assert registry.current("g") == 2
    assert registry.rollback("g") == 1
    with pytest.raises(RegistryError, match="no version before"):
        registry.rollback("g")


def test_refuses_bad_input(registry: AdapterRegistry, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="may not contain"):
        registry.publish("bad@name", _adapter(tmp_path / "a", "x"), "m")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RegistryError, match=r"adapter_config\.json"):
        registry.publish("g", empty, "m")


@pytest.mark.parametrize(
    "bad",
    ["../../outside.txt", "sub/../../outside.txt", "ABSOLUTE", "a\\b", "a//b", "./a", ""],
)
def test_a_manifest_naming_unsafe_paths_is_refused(
    registry: AdapterRegistry, tmp_path: Path, bad: str
) -> None:
    """A manifest is data: a file name like ``../../x`` must not write outside the cache."""
    if bad == "ABSOLUTE":
        bad = str(tmp_path / "outside.txt")
    entry = registry.publish("g", _adapter(tmp_path / "a", "one"), "m")
    files = {**entry.files, bad: hashlib.sha256(b"planted").hexdigest()}
    if bad and not bad.endswith("/"):
        registry.storage.put(f"g/v1/files/{bad}", b"planted")  # what the download would fetch
    manifest = {**entry.__dict__, "files": files}
    registry.storage.put("g/v1/manifest.json", json.dumps(manifest).encode())
    cache = tmp_path / "cache"
    with pytest.raises(RegistryError, match="unsafe file path"):
        registry.download("g", 1, cache)
    assert not (tmp_path / "outside.txt").exists()
    assert not cache.exists() or list(cache.iterdir()) == []


def test_a_manifest_of_another_version_is_refused(
    registry: AdapterRegistry, tmp_path: Path
) -> None:
    """The manifest's own name makes the cache folder's name: ``../x`` there escapes too."""
    entry = registry.publish("g", _adapter(tmp_path / "a", "one"), "m")
    manifest = {**entry.__dict__, "name": "../../escaped"}
    registry.storage.put("g/v1/manifest.json", json.dumps(manifest).encode())
    with pytest.raises(RegistryError, match="describes"):
        registry.download("g", 1, tmp_path / "cache" / "inner")
    assert not list(tmp_path.glob("escaped*"))


class _InStep:
    """Storage whose file reads wait for each other: two downloads go file by file in step."""

    def __init__(self, storage: Storage, parties: int) -> None:
        self.storage = storage
        self.barrier = threading.Barrier(parties, timeout=30)

    def put(self, key: str, data: bytes) -> None:
        self.storage.put(key, data)

    def get(self, key: str) -> bytes:
        if "/files/" in key:
            self.barrier.wait()
        return self.storage.get(key)

    def exists(self, key: str) -> bool:
        return self.storage.exists(key)

    def list(self, prefix: str) -> list[str]:
        return self.storage.list(prefix)


def test_concurrent_downloads_of_one_version_do_not_mix(
    registry: AdapterRegistry, tmp_path: Path
) -> None:
    registry.publish("g", _adapter(tmp_path / "a", "one"), "m")
    in_step = AdapterRegistry(_InStep(registry.storage, 2))
    cache = tmp_path / "cache"
    results: list[Path] = []
    errors: list[BaseException] = []

    def download() -> None:
        try:
            results.append(in_step.download("g", 1, cache))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=download) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    assert json.loads((results[0] / "adapter_config.json").read_text())["marker"] == "one"
    assert [p.name for p in cache.iterdir()] == [results[0].name]  # no temporary folder left


def test_a_failed_download_leaves_nothing_behind(registry: AdapterRegistry, tmp_path: Path) -> None:
    registry.publish("g", _adapter(tmp_path / "a", "one"), "m")
    registry.storage.put("g/v1/files/adapter_model.safetensors", b"tampered")
    cache = tmp_path / "cache"
    with pytest.raises(RegistryError, match="does not match"):
        registry.download("g", 1, cache)
    assert list(cache.iterdir()) == []


def test_run_summaries_are_kept_for_every_run_and_beside_a_published_version(
    registry: AdapterRegistry, tmp_path: Path
) -> None:
    kept = registry.record_run("g", b'{"promoted": false}')
    entry = registry.publish("g", _adapter(tmp_path / "a", "one"), "m")
    published = registry.record_run("g", b'{"promoted": true}', entry.version)
    assert registry.runs("g") == sorted([kept, published])
    assert registry.storage.get(kept) == b'{"promoted": false}'
    assert registry.storage.get("g/v1/summary.json") == b'{"promoted": true}'
    assert registry.versions("g") == [1]  # a summary is not a version


@pytest.mark.parametrize("name", ["datasets", "checkpoints"])
def test_the_stores_own_folders_are_not_adapter_names(
    registry: AdapterRegistry, tmp_path: Path, name: str
) -> None:
    with pytest.raises(RegistryError, match="reserved"):
        registry.publish(name, _adapter(tmp_path / "a", "one"), "m")

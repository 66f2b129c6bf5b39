"""The adapter registry on a local folder and on moto's standalone S3 server."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from training.registry import AdapterRegistry, RegistryError
from training.storage import LocalStorage, S3Storage, open_storage


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

"""Where adapters and training data live: the versioned adapter registry (:mod:`.registry`)
and the accumulated dataset (:mod:`.datasets`) over a folder or an S3 prefix (:mod:`.storage`).
Training publishes to the registry and reads the dataset, predictors read the registry, the
accumulator appends to the dataset; all import them from here, below any of them."""

from __future__ import annotations

from streams.artifacts.datasets import DatasetError, DatasetStore, LabelledRecord, Snapshot
from streams.artifacts.registry import AdapterRegistry, AdapterVersion, RegistryError
from streams.artifacts.storage import open_storage
from streams.config import Settings

__all__ = [
    "AdapterRegistry",
    "AdapterVersion",
    "DatasetError",
    "DatasetStore",
    "LabelledRecord",
    "RegistryError",
    "Snapshot",
    "dataset_store_for",
    "open_storage",
    "registry_for",
]


def registry_for(settings: Settings) -> AdapterRegistry:
    """The registry the settings name (``predictor.registry``, else a cache folder)."""
    location = settings.predictor.registry or str(settings.cache_dir / "adapters")
    return AdapterRegistry(open_storage(location, settings.images.s3_endpoint_url))


def dataset_store_for(settings: Settings) -> DatasetStore:
    """The dataset the settings name (``training.dataset`` in ``training.dataset_store``, else
    in the registry's store)."""
    location = (
        settings.training.dataset_store
        or settings.predictor.registry
        or str(settings.cache_dir / "adapters")
    )
    storage = open_storage(location, settings.images.s3_endpoint_url)
    return DatasetStore(storage, settings.training.dataset)

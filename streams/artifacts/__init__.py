"""Where adapters live: the versioned adapter registry (:mod:`.registry`) over a folder or an
S3 prefix (:mod:`.storage`). Training publishes to it, predictors read from it; both import it
from here, below either of them."""

from __future__ import annotations

from streams.artifacts.registry import AdapterRegistry, AdapterVersion, RegistryError
from streams.artifacts.storage import open_storage
from streams.config import Settings

__all__ = ["AdapterRegistry", "AdapterVersion", "RegistryError", "open_storage", "registry_for"]


def registry_for(settings: Settings) -> AdapterRegistry:
    """The registry the settings name (``predictor.registry``, else a cache folder)."""
    location = settings.predictor.registry or str(settings.cache_dir / "adapters")
    return AdapterRegistry(open_storage(location, settings.images.s3_endpoint_url))

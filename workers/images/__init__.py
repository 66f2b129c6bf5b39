"""Image loading: fetch a reference, verify, decode, normalise, hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from PIL import Image

from schemas.images import ImageRef
from streams.config import ImageSettings
from workers.images.decode import decode_image
from workers.images.errors import ImageDecodeError, ImageError, ImageFetchError, ImageRefused
from workers.images.fetch import fetch

__all__ = [
    "ImageDecodeError",
    "ImageError",
    "ImageFetchError",
    "ImageRefused",
    "LoadedImage",
    "load_image",
]


@dataclass(frozen=True)
class LoadedImage:
    image: Image.Image
    #: sha256 of the fetched bytes: the caption cache key.
    sha256: str


def load_image(ref: ImageRef, settings: ImageSettings) -> LoadedImage:
    """Fetch and decode; raises an :class:`ImageError` subclass with the reason."""
    data = fetch(ref.url, settings)
    digest = hashlib.sha256(data).hexdigest()
    if ref.sha256 is not None and ref.sha256 != digest:
        raise ImageFetchError(f"sha256 mismatch: expected {ref.sha256[:12]}…, got {digest[:12]}…")
    return LoadedImage(decode_image(data, settings), digest)

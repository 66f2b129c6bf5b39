"""Image references: images travel as URLs, never as bytes inside messages."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

ALLOWED_SCHEMES = frozenset({"s3", "https", "http", "file"})


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ALLOWED_SCHEMES:
        allowed = ", ".join(sorted(ALLOWED_SCHEMES))
        raise ValueError(f"image url scheme {parts.scheme!r} is not one of {allowed}")
    if parts.scheme in {"s3", "http", "https"} and not parts.netloc:
        raise ValueError(f"image url {url!r} has no host/bucket")
    if parts.scheme == "file" and not parts.path:
        raise ValueError(f"image url {url!r} has no path")
    return url


ImageUrl = Annotated[str, Field(min_length=6, max_length=4096), AfterValidator(_check_url)]


class ImageRef(BaseModel):
    """A reference to an image: ``s3://bucket/key``, ``http(s)://...`` or ``file:///path``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: ImageUrl
    #: Optional sha256 of the image bytes; workers verify it when present.
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

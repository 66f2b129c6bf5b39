"""Why an image could not be used. A failed image never fails its request: the slot gets no
caption and the reason is recorded on the record.

    ImageError
    ├── ImageRefused      the reference may not be fetched (scheme, address, path)
    ├── ImageFetchError   the fetch failed (timeout, status, size, redirects, checksum)
    └── ImageDecodeError  the bytes are not a usable image (format, truncation, bomb)
"""


class ImageError(Exception):
    """Base: ``str(error)`` is the reason recorded on the record."""


class ImageRefused(ImageError):
    pass


class ImageFetchError(ImageError):
    pass


class ImageDecodeError(ImageError):
    pass

"""Bytes -> a normalised RGB image of the configured medium size."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from streams.config import ImageSettings
from workers.images.errors import ImageDecodeError

_HIGH_DEPTH = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}


def decode_image(data: bytes, settings: ImageSettings) -> Image.Image:
    """Decode, refuse bombs and broken files, take the first frame, convert to RGB, resize."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > settings.max_pixels:
                raise ImageDecodeError(
                    f"image of {width}x{height} pixels exceeds "
                    f"the {settings.max_pixels}-pixel limit"
                )
            img.seek(0)  # animated images: the first frame
            img.load()
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image (unknown format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"broken image: {exc}") from None
    img = ImageOps.exif_transpose(img) or img
    if img.mode in _HIGH_DEPTH:
        img = img.point(lambda v: v / 256).convert("L")
    if img.mode in ("RGBA", "LA", "P", "PA"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    img = img.convert("RGB")
    img.thumbnail((settings.size, settings.size), Image.Resampling.LANCZOS)
    return img

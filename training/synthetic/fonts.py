"""TrueType faces for pack text: the DejaVu family where installed, else Pillow's built-in face.

Only bold or regular, non-light faces are used (thin strokes read badly by Tesseract). The face
list is in a fixed order, so a seed picks the same face on every machine that has the same
fonts; a machine without DejaVu draws everything in ``ImageFont.load_default(size=...)`` (the
images then differ from a DejaVu machine's, but stay deterministic on that machine).
"""

from __future__ import annotations

import functools
from pathlib import Path

from PIL import ImageFont

#: Preferred faces, most legible first.
FACES: tuple[str, ...] = (
    "DejaVuSans-Bold.ttf",
    "DejaVuSansCondensed-Bold.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSerifCondensed-Bold.ttf",
    "DejaVuSans.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSans-BoldOblique.ttf",
)
FONT_DIRS: tuple[Path, ...] = (
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    Path.home() / ".fonts",
)
#: Name used for Pillow's built-in face when no TrueType file is found.
BUILTIN = "pillow-default"

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@functools.cache
def faces() -> tuple[str, ...]:
    """Available face paths in :data:`FACES` order, or ``(BUILTIN,)`` when none is installed."""
    found: dict[str, str] = {}
    for folder in FONT_DIRS:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("DejaVu*.ttf")):
            found.setdefault(path.name, str(path))
    paths = tuple(found[name] for name in FACES if name in found)
    return paths or (BUILTIN,)


@functools.cache
def font(face: str, size: int) -> Font:
    """The face (a path from :func:`faces`, or :data:`BUILTIN`) at ``size`` pixels."""
    if face == BUILTIN:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(face, size=size)

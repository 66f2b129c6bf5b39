"""Seller photos of :mod:`training.synthetic.items`: sneakers, mugs, t-shirts and water
bottles drawn with Pillow, the brand and the item's printed aspects in large clean text.

:func:`draw_item` paints one item on a transparent canvas (:class:`ItemArt`) in a shade of its
colour (:func:`~training.synthetic.drawing.pack_fill`), with the silhouette its ``shape``
aspects give (a high or low sneaker collar, short or long sleeves) and its text printed by
:func:`~training.synthetic.drawing.print_lines`; :func:`seller_photo` places the art in the
claims' table-and-wall scene (:func:`~training.synthetic.drawing.scene`: tilt, scale,
lighting), so the item is the photo's largest block of its colour. Sneakers and t-shirts carry
the brand on a logo patch (:data:`PATCHED`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

from training.synthetic.drawing import (
    CANVAS,
    RGB,
    Box,
    dark_text,
    pack_fill,
    print_lines,
    scene,
    shade,
    text_colour,
)
from training.synthetic.fonts import faces
from training.synthetic.items import Item, print_text

Point = tuple[int, int]
#: Categories whose brand is printed on a logo patch (light on a dark item, dark on a light
#: one): Tesseract reads a bare word on a shirt or a shoe's side badly.
PATCHED = ("sneakers", "t-shirts")


@dataclass
class ItemArt:
    """An item painted on a transparent RGBA canvas: its fill and where each text went."""

    image: Image.Image
    item: Item
    fill: RGB
    #: Aspect name ("Brand", "Capacity", ...) -> bounding box of its printed text.
    text: dict[str, Box]


def _lines(item: Item, rng: random.Random) -> list[tuple[str, str, int]]:
    """(aspect, text, target font size): the brand first, then the printed aspects."""
    brand = item.brand.upper() if rng.random() < 0.65 else item.brand
    lines = [("Brand", brand, rng.randint(54, 66))]
    for name in item.printed:
        text = print_text(name, item.values[name])
        assert text is not None  # sample_item prints only printable values
        if name == "Capacity" and rng.random() < 0.5:
            text = text.replace(" ", "").upper()
        lines.append((name, text, rng.randint(28, 36)))
    return lines


def _sneaker(draw: ImageDraw.ImageDraw, item: Item, fill: RGB, rng: random.Random) -> Box:
    high = item.values["Type"] == "High Top"
    collar = rng.randint(90, 120) if high else rng.randint(190, 215)
    sole_top = rng.randint(328, 342)
    upper: list[Point] = [
        (26, sole_top),
        (30, collar + 20),
        (44, collar),
        (150, collar + (10 if high else 14)),
        (190, collar + (70 if high else 16)),
        (300, 248),
        (372, 272),
        (412, 300),
        (420, sole_top),
    ]
    draw.polygon(upper, fill=fill)
    draw.polygon(
        [(40, collar + 6), (140, collar + 14), (150, collar + 30), (46, collar + 24)],
        fill=shade(fill, 0.7),
    )
    sole = rng.choice([(242, 242, 240), (40, 40, 42), (206, 190, 160)])
    draw.rounded_rectangle((18, sole_top, 428, sole_top + rng.randint(34, 44)), 14, fill=sole)
    for k in range(4):
        x = 214 + 26 * k
        draw.line((x, 236 + 6 * k, x + 18, 226 + 6 * k), fill=shade(fill, 0.6), width=5)
    return (50, max(collar + 46, 190), 300, sole_top - 10)


def _mug(draw: ImageDraw.ImageDraw, fill: RGB, rng: random.Random) -> Box:
    x0, x1 = rng.randint(40, 56), rng.randint(318, 332)
    y0, y1 = rng.randint(96, 124), 452
    ring = rng.randint(24, 32)
    draw.ellipse((x1 - 60, 170, 432, 380), outline=shade(fill, 0.9), width=ring)
    draw.rounded_rectangle((x0, y0, x1, y1), radius=30, fill=fill)
    draw.ellipse((x0, y0 - 16, x1, y0 + 16), fill=shade(fill, 0.8))
    return (x0 + 20, y0 + 30, x1 - 18, y1 - 22)


def _t_shirt(draw: ImageDraw.ImageDraw, item: Item, fill: RGB, rng: random.Random) -> Box:
    long = item.values["Sleeve Length"] == "Long Sleeve"
    half = rng.randint(104, 118) if long else rng.randint(118, 130)
    left, right = 220 - half, 220 + half
    top, bottom = 70, 460
    arm = shade(fill, 0.92)
    if long:
        sleeves = [
            [
                (left, top + 10),
                (left - 70, top + 90),
                (left - 76, 440),
                (left - 26, 446),
                (left, 200),
            ],
            [
                (right, top + 10),
                (right + 70, top + 90),
                (right + 76, 440),
                (right + 26, 446),
                (right, 200),
            ],
        ]
    else:
        sleeves = [
            [(left, top + 8), (left - 92, top + 84), (left - 54, top + 150), (left, top + 116)],
            [(right, top + 8), (right + 92, top + 84), (right + 54, top + 150), (right, top + 116)],
        ]
    for sleeve in sleeves:
        draw.polygon(sleeve, fill=arm)
    draw.polygon(
        [
            (left, top + 8),
            (160, top),
            (280, top),
            (right, top + 8),
            (right, bottom),
            (left, bottom),
        ],
        fill=fill,
    )
    draw.chord((170, top - 34, 270, top + 40), 0, 180, fill=shade(fill, 0.72))
    return (left + 16, top + 70, right - 16, top + 250)


def _bottle(draw: ImageDraw.ImageDraw, fill: RGB, rng: random.Random) -> Box:
    half = rng.randint(124, 136)
    x0, x1 = 220 - half, 220 + half
    y0 = rng.randint(100, 124)
    cap = rng.choice([(30, 30, 32), (236, 236, 234), (150, 150, 150), shade(fill, 0.65)])
    draw.rounded_rectangle((150, 24, 290, y0 + 20), radius=16, fill=cap)
    draw.rounded_rectangle((x0, y0, x1, 460), radius=40, fill=fill)
    draw.rectangle((x0 + 16, y0 + 40, x0 + 26, 420), fill=shade(fill, 1.1))
    return (x0 + 34, y0 + 36, x1 - 16, 440)


def draw_item(item: Item, rng: random.Random) -> ItemArt:
    """Paint ``item`` with a seeded silhouette, faces, layout and text case."""
    img = Image.new("RGBA", CANVAS, (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    fill = pack_fill(rng, item.colour)
    all_faces = faces()
    brand_face = rng.choice(all_faces)
    text_face = rng.choice(all_faces[: max(1, min(5, len(all_faces)))])
    align = rng.choice(("stack", "left"))
    kind = item.category.name
    if kind == "sneakers":
        area = _sneaker(draw, item, fill, rng)
    elif kind == "mugs":
        area = _mug(draw, fill, rng)
    elif kind == "t-shirts":
        area = _t_shirt(draw, item, fill, rng)
    else:
        area = _bottle(draw, fill, rng)
    ink = text_colour(rng, fill)
    if kind in PATCHED:
        x0, y0, x1, y1 = area
        patch = (32, 32, 36) if dark_text(fill) else (236, 234, 228)
        draw.rounded_rectangle((x0 - 8, y0 - 4, x1 + 8, y1 + 4), radius=10, fill=patch)
        ink = text_colour(rng, patch)
    text = print_lines(draw, _lines(item, rng), area, ink, rng, align, brand_face, text_face)
    return ItemArt(img, item, fill, text)


def seller_photo(art: ItemArt, rng: random.Random) -> Image.Image:
    """The seller's photo of ``art``: the claims' scene (wall, table, tilt, lighting)."""
    return scene(art.image, art.fill, art.item.colour, rng)

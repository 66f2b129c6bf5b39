"""Packs (boxes) and bottles drawn with Pillow, and the photos and catalog shots made of them.

:func:`draw_pack` paints one product on a transparent canvas (:class:`PackArt`) with a seeded
layout, faces, text case and decorations, and records where each attribute's text went, so the
caller knows what the image shows. :func:`photo` places the art in a table-and-wall scene with
an angle, scale, offset and lighting jitter (a customer photo); :func:`catalog_shot` places it
square-on on a plain background (the listing's image). The pack's fill is a shade of its
:data:`workers.backends.ocr.COLOURS` entry that stays nearest to that name under the lighting
jitter; the scene's wall and table are other colour names, each split in two tones, so the
pack is the largest block of one colour and leads the OCR captioner's dominant colours. The
scene's brightness sits on the side of the text (darker than a pack with dark text, lighter than
one with light text), which keeps Tesseract's global threshold between the text and the pack.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageEnhance

from training.synthetic.fonts import Font, faces, font
from training.synthetic.products import Product
from workers.backends.ocr import COLOURS

RGB = tuple[int, int, int]
Box = tuple[int, int, int, int]

SIZE = 480
CANVAS = (440, 470)
MIN_FONT = 22
TAGLINES = ("NEW", "ORIGINAL", "CLASSIC", "FRESH", "PREMIUM", "NATURAL", "EXTRA")
DARK_TEXT: tuple[RGB, ...] = ((15, 15, 15), (28, 28, 60))
LIGHT_TEXT: tuple[RGB, ...] = ((250, 250, 250), (255, 246, 225))
#: Scene tones (colour name, rgb); see :func:`photo` for how they are picked.
WALLS: tuple[tuple[str, RGB], ...] = (
    ("white", (236, 234, 228)),
    ("beige", (220, 206, 172)),
    ("grey", (165, 165, 162)),
    ("grey", (100, 100, 99)),
    ("navy", (44, 54, 96)),
    ("brown", (122, 82, 54)),
)
TABLES: tuple[tuple[str, RGB], ...] = (
    ("brown", (126, 84, 50)),
    ("grey", (112, 112, 114)),
    ("grey", (182, 182, 180)),
    ("beige", (204, 184, 142)),
    ("black", (40, 38, 36)),
    ("white", (230, 230, 226)),
)
#: How far (in luma) the scene keeps from the pack, on the side of the text.
LUMA_GAP = 28


@dataclass
class PackArt:
    """A product painted on a transparent RGBA canvas, with where its parts and text are."""

    image: Image.Image
    product: Product
    fill: RGB
    #: The printed face (box front, bottle body).
    face: Box
    #: Other parts: "top", "side" (box); "cap", "neck", "shoulder" (bottle); "tape" if taped.
    parts: dict[str, Box]
    #: Field -> bounding box of its text: "brand", "type", "size", "count", "gender", "expiry".
    text: dict[str, Box]
    cap_fill: RGB | None = None
    #: Fields the drawing printed but damage then covered.
    hidden: set[str] = field(default_factory=set)
    #: Colour of a spill to pool on the table under the pack, if any.
    puddle: RGB | None = None

    def shown(self) -> set[str]:
        """The fields a viewer can read off this art."""
        return set(self.text) - self.hidden


def _luma(rgb: RGB) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def nearest_colour(rgb: RGB) -> str:
    return min(
        COLOURS, key=lambda n: sum((a - b) ** 2 for a, b in zip(COLOURS[n], rgb, strict=True))
    )


def shade(rgb: RGB, factor: float) -> RGB:
    r, g, b = (max(0, min(255, round(v * factor))) for v in rgb)
    return (r, g, b)


def pack_fill(rng: random.Random, colour: str) -> RGB:
    """A shade of ``colour`` (+-8 per channel) that stays nearest to it under +-12% brightness."""
    base = COLOURS[colour]
    for _ in range(20):
        r, g, b = (max(0, min(255, v + rng.randint(-8, 8))) for v in base)
        candidate = (r, g, b)
        if all(nearest_colour(shade(candidate, f)) == colour for f in (0.88, 1.0, 1.12)):
            return candidate
    return base


def text_colour(rng: random.Random, background: RGB) -> RGB:
    return rng.choice(DARK_TEXT if dark_text(background) else LIGHT_TEXT)


def _fit(draw: ImageDraw.ImageDraw, text: str, face: str, size: int, width: int) -> Font:
    while size > MIN_FONT and draw.textlength(text, font=font(face, size)) > width:
        size -= 2
    return font(face, size)


def _lines(product: Product, rng: random.Random, catalog: bool) -> list[tuple[str, str, int]]:
    """(field, text, target font size) in print order; which optional fields print is seeded."""
    upper = rng.random() < 0.65
    brand = product.brand.upper() if upper or rng.random() < 0.4 else product.brand
    ptype = product.product_type.name
    lines: list[tuple[str, str, int]] = [("brand", brand, rng.randint(54, 68))]
    if rng.random() < 0.35:
        lines.append(("tagline", rng.choice(TAGLINES), rng.randint(24, 28)))
    lines.append(("type", ptype.upper() if upper else ptype, rng.randint(34, 42)))
    keep = 0.92 if catalog else 0.8
    if product.gender and rng.random() < keep + 0.05:
        lines.append(("gender", f"FOR {product.gender.upper()}", rng.randint(28, 34)))
    if rng.random() < keep + 0.05:
        size = product.size
        number, _, unit = size.partition(" ")
        text = rng.choice([size, size.upper(), f"{number}{unit.upper()}"]) if unit else size
        lines.append(("size", text, rng.randint(30, 38)))
    if product.count > 1 and rng.random() < keep:
        c = product.count
        text = rng.choice([f"{c} PACK", f"x{c}", f"PACK OF {c}", f"{c} COUNT"])
        lines.append(("count", text, rng.randint(30, 36)))
    if product.expiry and rng.random() < keep:
        text = rng.choice([f"EXP {product.expiry}", f"EXP: {product.expiry}"])
        lines.append(("expiry", text, rng.randint(26, 30)))
    return lines


def print_lines(
    draw: ImageDraw.ImageDraw,
    lines: list[tuple[str, str, int]],
    area: Box,
    colour: RGB,
    rng: random.Random,
    align: str,
    brand_face: str,
    text_face: str,
) -> dict[str, Box]:
    """Print ``lines`` in ``area`` (shrinking them to fit); returns each field's text box."""
    x0, y0, x1, y1 = area
    width, height = x1 - x0, y1 - y0
    scale = 1.0
    while True:
        fonts = [
            _fit(
                draw,
                text,
                brand_face if f == "brand" else text_face,
                max(MIN_FONT, round(s * scale)),
                width,
            )
            for f, text, s in lines
        ]
        heights = [
            draw.textbbox((0, 0), text, font=ft, anchor="lt")[3]
            for (_, text, _), ft in zip(lines, fonts, strict=True)
        ]
        if sum(heights) + 8 * (len(lines) - 1) <= height or scale < 0.6:
            break
        scale -= 0.08
    gap = max(8, min(34, (height - sum(heights)) // (len(lines) + 1)))
    y = y0 + max(0, (height - sum(heights) - gap * (len(lines) - 1)) // 2)
    boxes: dict[str, Box] = {}
    for (name, text, _), ft, h in zip(lines, fonts, heights, strict=True):
        if align == "left":
            x, anchor = x0 + rng.randint(0, 6), "lt"
        elif align == "right":
            x, anchor = x1 - rng.randint(0, 6), "rt"
        else:
            x, anchor = (x0 + x1) // 2, "mt"
        draw.text((x, y), text, fill=colour, font=ft, anchor=anchor)
        if name != "tagline":
            left, top, right, bottom = draw.textbbox((x, y), text, font=ft, anchor=anchor)
            boxes[name] = (int(left), int(top), int(right), int(bottom))
        y += h + gap
    return boxes


LAYOUTS = ("stack", "left", "right")


def draw_pack(
    product: Product, rng: random.Random, catalog: bool = False, layout: str | None = None
) -> PackArt:
    """Paint ``product`` (a box or a bottle) with a seeded or given layout; see :class:`PackArt`."""
    img = Image.new("RGBA", CANVAS, (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    fill = pack_fill(rng, product.colour)
    all_faces = faces()
    brand_face = rng.choice(all_faces)
    text_face = rng.choice(all_faces[: max(1, min(5, len(all_faces)))])
    picked = rng.choice(LAYOUTS)
    layout = layout or picked
    lines = _lines(product, rng, catalog)
    ink = text_colour(rng, fill)
    parts: dict[str, Box] = {}
    cap_fill: RGB | None = None
    cw, ch = CANVAS
    if product.shape == "box":
        w, h = rng.randint(300, 350), rng.randint(340, 380)
        depth = rng.randint(14, 40)
        fx0 = (cw - w - depth) // 2 + (depth if rng.random() < 0.5 else 0)
        fy0 = ch - h - 20
        face = (fx0, fy0, fx0 + w, fy0 + h)
        side_left = fx0 > (cw - w - depth) // 2
        top = [(fx0, fy0), (fx0 + w, fy0)]
        if side_left:
            top += [(fx0 + w - depth, fy0 - depth // 2), (fx0 - depth, fy0 - depth // 2)]
            side = [
                (fx0, fy0),
                (fx0 - depth, fy0 - depth // 2),
                (fx0 - depth, fy0 + h - depth // 2),
                (fx0, fy0 + h),
            ]
        else:
            top += [(fx0 + w + depth, fy0 - depth // 2), (fx0 + depth, fy0 - depth // 2)]
            side = [
                (fx0 + w, fy0),
                (fx0 + w + depth, fy0 - depth // 2),
                (fx0 + w + depth, fy0 + h - depth // 2),
                (fx0 + w, fy0 + h),
            ]
        draw.polygon(top, fill=shade(fill, 1.08))
        draw.polygon(side, fill=shade(fill, 0.86))
        draw.rectangle(face, fill=fill)
        xs = [p[0] for p in top + side]
        ys = [p[1] for p in top + side]
        parts["top"] = (min(xs), min(ys), max(xs), fy0)
        parts["side"] = (min(p[0] for p in side), min(ys), max(p[0] for p in side), max(ys))
        if rng.random() < 0.5:
            tw = rng.randint(50, 80)
            tx = (fx0 + fx0 + w) // 2 - tw // 2 + rng.randint(-30, 30)
            tape = (tx, fy0 - depth // 2, tx + tw, fy0 + rng.randint(28, 42))
            draw.rectangle(tape, fill=(214, 206, 188, 235))
            parts["tape"] = tape
        margin = 22
        area = (
            fx0 + margin,
            fy0 + margin + (20 if "tape" in parts else 0),
            fx0 + w - margin,
            fy0 + h - margin,
        )
    else:
        w, h = rng.randint(240, 290), rng.randint(280, 320)
        bx0 = (cw - w) // 2
        by0 = ch - h - 16
        face = (bx0, by0, bx0 + w, by0 + h)
        neck_w = int(w * rng.uniform(0.32, 0.4))
        shoulder_h = rng.randint(34, 52)
        neck_h = rng.randint(18, 30)
        cap_h = rng.randint(34, 46)
        nx0 = (cw - neck_w) // 2
        shoulder = (bx0, by0 - shoulder_h, bx0 + w, by0 + shoulder_h)
        draw.ellipse(shoulder, fill=fill)
        neck = (nx0, by0 - shoulder_h - neck_h + 4, nx0 + neck_w, by0 - shoulder_h + 10)
        draw.rectangle(neck, fill=shade(fill, 0.92))
        cap_w = int(neck_w * 1.18)
        cx0 = (cw - cap_w) // 2
        cap = (cx0, neck[1] - cap_h, cx0 + cap_w, neck[1] + 6)
        cap_fill = rng.choice([(245, 245, 245), (25, 25, 25), (150, 150, 150), shade(fill, 0.7)])
        draw.rounded_rectangle(cap, radius=6, fill=cap_fill)
        draw.rectangle(
            (cx0 + 2, cap[3] - 2, cx0 + cap_w - 2, cap[3] + 6), fill=shade(cap_fill, 0.8)
        )
        draw.rounded_rectangle(face, radius=rng.randint(24, 44), fill=fill)
        gloss_x = bx0 + rng.randint(12, 24)
        draw.rectangle((gloss_x, by0 + 30, gloss_x + 8, by0 + h - 40), fill=shade(fill, 1.12))
        parts.update(shoulder=shoulder, neck=neck, cap=cap)
        margin = 30
        area = (bx0 + margin + 6, by0 + 18, bx0 + w - margin, by0 + h - 26)
    if rng.random() < 0.4:
        stripe_y = area[3] + 4
        draw.rectangle(
            (face[0], stripe_y, face[2], min(face[3] - 4, stripe_y + 10)), fill=shade(fill, 0.75)
        )
    text = print_lines(draw, lines, area, ink, rng, layout, brand_face, text_face)
    return PackArt(img, product, fill, face, parts, text, cap_fill=cap_fill)


def _lighting(rng: random.Random, fill: RGB, colour: str) -> float:
    for _ in range(10):
        factor = rng.uniform(0.88, 1.12)
        if nearest_colour(shade(fill, factor)) == colour:
            return factor
    return 1.0


def _bounds(image: Image.Image) -> Box:
    box = image.getchannel("A").getbbox()
    return box if box is not None else (0, 0, image.width, image.height)


def dark_text(fill: RGB) -> bool:
    """Whether text on ``fill`` is dark (else light)."""
    return _luma(fill) > 140


def _scene_tones(
    tones: tuple[tuple[str, RGB], ...], fill: RGB, colour: str, *avoid: str
) -> list[tuple[str, RGB]]:
    """Tones not named like the pack (or ``avoid``), on the text's side of the pack's luma.

    Tesseract binarises with one global threshold; a wall much lighter than a pack with dark
    text would put the threshold between pack and wall and swallow the text with the pack.
    Keeping the scene on the text's side (darker behind dark text, lighter behind light text)
    leaves the pack alone on its side of the threshold.
    """
    pack = _luma(fill)
    if dark_text(fill):
        side = [t for t in tones if _luma(t[1]) <= pack - LUMA_GAP]
    else:
        side = [t for t in tones if _luma(shade(t[1], 0.88)) >= pack + LUMA_GAP]
    named = [t for t in side if t[0] != colour and t[0] not in avoid]
    return named or side or list(tones)


def photo(art: PackArt, rng: random.Random) -> Image.Image:
    """A customer photo: a close-up of the art on a table against a wall, tilted, shifted, lit.

    The wall has a lit and a shaded part and the table two wood tones, so neither forms one big
    block of colour: the pack stays the largest single colour of the photo.
    """
    return scene(art.image, art.fill, art.product.colour, rng, art.puddle)


def scene(
    cutout: Image.Image,
    fill: RGB,
    colour: str,
    rng: random.Random,
    puddle: RGB | None = None,
) -> Image.Image:
    """:func:`photo` of any RGBA ``cutout`` whose main fill is ``fill`` (colour name
    ``colour``): the scene avoids that colour and keeps to the text's side of its luma; a
    ``puddle`` colour pools a spill on the table under it."""
    wall_name, wall = rng.choice(_scene_tones(WALLS, fill, colour))
    _, table = rng.choice(_scene_tones(TABLES, fill, colour, wall_name))
    canvas = Image.new("RGB", (SIZE, SIZE), wall)
    draw = ImageDraw.Draw(canvas, "RGBA")
    split = rng.randint(SIZE // 4, 3 * SIZE // 4)
    lean = rng.randint(-80, 80)
    shaded = [(split, 0), (SIZE, 0), (SIZE, SIZE), (split + lean, SIZE)]
    if rng.random() < 0.5:
        shaded = [(0, 0), (split, 0), (split + lean, SIZE), (0, SIZE)]
    draw.polygon(shaded, fill=shade(wall, 0.9))
    horizon = rng.randint(int(SIZE * 0.5), int(SIZE * 0.66))
    y = horizon
    tone = 0
    while y < SIZE:
        plank = rng.randint(10, 26)
        draw.rectangle((0, y, SIZE, y + plank), fill=shade(table, 1.0 if tone == 0 else 0.88))
        y += plank
        tone ^= 1
    box = _bounds(cutout)
    pack = cutout.crop(box)
    scale = rng.uniform(0.84, 0.94) * min(SIZE / pack.width, SIZE / pack.height)
    pack = pack.resize(
        (round(pack.width * scale), round(pack.height * scale)), Image.Resampling.LANCZOS
    )
    pack = pack.rotate(rng.uniform(-4, 4), resample=Image.Resampling.BICUBIC, expand=True)
    x = (SIZE - pack.width) // 2 + rng.randint(-12, 12)
    y = max(0, SIZE - pack.height - rng.randint(4, 14))
    shadow_y = min(SIZE - 8, y + pack.height - 10)
    draw.ellipse((x + 30, shadow_y - 10, x + pack.width - 30, shadow_y + 12), fill=(0, 0, 0, 70))
    if puddle is not None:
        px = x + pack.width // 2 + rng.randint(-60, 60)
        for _ in range(3):
            rx, ry = rng.randint(50, 110), rng.randint(12, 24)
            dx = rng.randint(-50, 50)
            draw.ellipse(
                (px + dx - rx, shadow_y - ry, px + dx + rx, shadow_y + ry), fill=(*puddle, 190)
            )
    canvas.paste(pack, (x, y), pack)
    return ImageEnhance.Brightness(canvas).enhance(_lighting(rng, fill, colour))


def catalog_shot(art: PackArt) -> Image.Image:
    """The listing image: the art square-on, centred on a plain light background."""
    background = (92, 94, 100) if dark_text(art.fill) else (248, 248, 248)
    canvas = Image.new("RGB", (SIZE, SIZE), background)
    scale = min(SIZE * 0.94 / CANVAS[0], SIZE * 0.94 / CANVAS[1])
    pack = art.image.resize(
        (round(CANVAS[0] * scale), round(CANVAS[1] * scale)), Image.Resampling.LANCZOS
    )
    canvas.paste(pack, ((SIZE - pack.width) // 2, (SIZE - pack.height) // 2), pack)
    return canvas

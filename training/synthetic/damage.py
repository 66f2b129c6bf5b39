"""Damage overlays painted onto a :class:`~training.synthetic.drawing.PackArt`, and one benign
sticker that intact and damaged packs both get.

Kinds (:data:`KINDS`): ``tear`` (a box's cardboard ripped open showing the brown inside; on a
bottle a split in the plastic), ``spill`` (a stain with drips on the pack and a puddle on the
table), ``crushed_corner`` (a box corner dented in with creases; on a bottle a crushed-in side),
``broken_seal`` (a box's flap torn open at the top; a bottle's cap knocked off its neck with the
seal ring broken). Each overlay is placed where it covers the least printed text; a field whose
text box the damage still covers by more than :data:`HIDE_FRACTION` is added to ``art.hidden``,
so the AE label marks it ``Unanswerable``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from PIL import Image, ImageChops, ImageDraw

from training.synthetic.drawing import RGB, Box, PackArt, shade

KINDS: tuple[str, ...] = ("tear", "spill", "crushed_corner", "broken_seal")
HIDE_FRACTION = 0.2
SPILLS: tuple[RGB, ...] = ((98, 62, 30), (186, 150, 44), (60, 44, 30), (150, 40, 40))
CARDBOARD: RGB = (190, 158, 116)
Point = tuple[float, float]


def _relief(fill: RGB, strength: float) -> RGB:
    """A tone of ``fill`` that stands out from it: darker on light fills, lighter on dark ones."""
    if sum(fill) / 3 > 90:
        return shade(fill, 1 - strength)
    r, g, b = (min(255, round(v + (255 - v) * strength)) for v in fill)
    return (r, g, b)


def _jagged(cx: float, cy: float, rx: float, ry: float, rng: random.Random) -> list[Point]:
    n = rng.randint(14, 22)
    pts = []
    for i in range(n):
        a = 2 * math.pi * i / n + rng.uniform(-0.12, 0.12)
        k = rng.uniform(0.6, 1.15)
        pts.append((cx + rx * k * math.cos(a), cy + ry * k * math.sin(a)))
    return pts


def _bounds(pts: list[Point]) -> Box:
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return (int(min(xs)), int(min(ys)), int(max(xs)) + 1, int(max(ys)) + 1)


def _covered(text: Box, damage: Box) -> float:
    w = min(text[2], damage[2]) - max(text[0], damage[0])
    h = min(text[3], damage[3]) - max(text[1], damage[1])
    area = max(1, (text[2] - text[0]) * (text[3] - text[1]))
    return max(0, w) * max(0, h) / area


def _place(art: PackArt, rng: random.Random, candidate: Callable[[], Box], tries: int = 12) -> Box:
    """The candidate box (from ``tries`` draws) that covers the least text."""
    best, best_cost = candidate(), math.inf
    for _ in range(tries):
        box = candidate()
        cost = sum(_covered(t, box) for t in art.text.values())
        if cost < best_cost:
            best, best_cost = box, cost
        if cost == 0:
            break
    return best


def _hide(art: PackArt, damage: Box) -> None:
    for name, box in art.text.items():
        if _covered(box, damage) > HIDE_FRACTION:
            art.hidden.add(name)


def _on_pack(art: PackArt, layer: Image.Image) -> None:
    """Composite ``layer`` onto the art only where the pack already is (not the empty canvas)."""
    alpha = ImageChops.multiply(layer.getchannel("A"), art.image.getchannel("A"))
    layer.putalpha(alpha)
    art.image.alpha_composite(layer)


def _erase(art: PackArt, pts: list[Point]) -> None:
    ImageDraw.Draw(art.image).polygon(pts, fill=(0, 0, 0, 0))


def tear(art: PackArt, rng: random.Random) -> None:
    x0, y0, x1, y1 = art.face
    layer = Image.new("RGBA", art.image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    if art.product.shape == "box":
        rx, ry = rng.randint(46, 72), rng.randint(36, 58)

        def candidate() -> Box:
            side = rng.choice(("left", "right", "bottom", "top"))
            if side in ("left", "right"):
                cx = x0 + rx * 0.6 if side == "left" else x1 - rx * 0.6
                cy = rng.uniform(y0 + ry, y1 - ry)
            else:
                cx = rng.uniform(x0 + rx, x1 - rx)
                cy = y0 + ry * 0.6 if side == "top" else y1 - ry * 0.6
            return (int(cx - rx), int(cy - ry), int(cx + rx), int(cy + ry))

        b = _place(art, rng, candidate)
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        pts = _jagged(cx, cy, rx, ry, rng)
        draw.polygon(pts, fill=(*shade(CARDBOARD, rng.uniform(0.9, 1.05)), 255))
        inner = [(cx + (px - cx) * 0.7, cy + (py - cy) * 0.7) for px, py in pts]
        draw.polygon(inner, fill=(*shade(CARDBOARD, 0.78), 255))
        for i in range(-2, 3):
            yy = cy + i * ry * 0.22
            draw.line(
                [(cx - rx * 0.5, yy), (cx + rx * 0.5, yy)],
                fill=(*shade(CARDBOARD, 0.62), 255),
                width=2,
            )
        draw.line([*pts, pts[0]], fill=(242, 234, 216, 255), width=4)
        i = rng.randrange(len(pts))
        a, c = pts[i], pts[(i + 3) % len(pts)]
        tip = (cx + (a[0] + c[0] - 2 * cx) * 0.95, cy + (a[1] + c[1] - 2 * cy) * 0.95)
        flap = [a, c, tip]
        draw.polygon(flap, fill=(*_relief(art.fill, 0.25), 255), outline=(40, 30, 20, 255))
        _on_pack(art, layer)
        _hide(art, _bounds(pts + flap))
        return
    # bottle: a split in the plastic along one side of the body
    length = rng.randint(110, 170)

    def split() -> Box:
        cx = rng.choice((x0 + 14, x1 - 14)) + rng.randint(-3, 3)
        cy = rng.uniform(y0 + length / 2 + 10, y1 - length / 2 - 10)
        return (int(cx - 22), int(cy - length / 2), int(cx + 22), int(cy + length / 2))

    b = _place(art, rng, split)
    cx = (b[0] + b[2]) / 2
    pts = [(cx + rng.uniform(-9, 9), b[1] + (b[3] - b[1]) * i / 8) for i in range(9)]
    draw.line(pts, fill=(*_relief(art.fill, 0.5), 255), width=16)
    draw.line(pts, fill=(30, 26, 24, 255), width=5)
    hole = _jagged(pts[4][0], pts[4][1], rng.randint(12, 18), rng.randint(16, 24), rng)
    draw.polygon(hole, fill=(22, 20, 20, 255), outline=(*_relief(art.fill, 0.6), 255))
    _on_pack(art, layer)
    _hide(art, b)


def spill(art: PackArt, rng: random.Random) -> None:
    x0, y0, x1, y1 = art.face
    colour = max(
        SPILLS,
        key=lambda c: (
            sum((a - b) ** 2 for a, b in zip(c, art.fill, strict=True)) > 9000,
            rng.random(),
        ),
    )
    layer = Image.new("RGBA", art.image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    r = rng.randint(38, 56)
    if art.product.shape == "bottle" and rng.random() < 0.3:
        neck = art.parts["neck"]
        start = ((neck[0] + neck[2]) / 2 + rng.uniform(-20, 20), neck[3] + 6)

        def candidate() -> Box:
            return (int(start[0] - r), int(start[1]), int(start[0] + r), int(start[1] + 2 * r))
    else:

        def candidate() -> Box:
            # anywhere on the face, or straddling its edge (the part off the pack is dropped)
            cx, cy = rng.uniform(x0 - r / 3, x1 + r / 3), rng.uniform(y0, y1 - r)
            return (int(cx - r), int(cy - r), int(cx + r), int(cy + r))

    b = _place(art, rng, candidate, tries=24)
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    fill = (*colour, rng.randint(190, 230))
    for _ in range(rng.randint(3, 6)):
        ex, ey = cx + rng.uniform(-r * 0.7, r * 0.7), cy + rng.uniform(-r * 0.5, r * 0.5)
        er = rng.uniform(r * 0.35, r * 0.7)
        draw.ellipse((ex - er, ey - er * 0.8, ex + er, ey + er * 0.8), fill=fill)
    bottom = int(cy + r)
    for _ in range(rng.randint(2, 4)):
        dx = cx + rng.uniform(-r * 0.8, r * 0.8)
        width = rng.randint(7, 13)
        end = min(y1 + 4, bottom + rng.randint(40, 130))
        for t in art.text.values():
            if t[0] - 4 < dx < t[2] + 4 and t[1] > cy + r * 0.5:
                end = min(end, t[1] - 4)
        if end <= cy + r * 0.6:
            continue
        draw.rounded_rectangle(
            (dx - width / 2, cy, dx + width / 2, end), radius=width // 2, fill=fill
        )
        bottom = max(bottom, end)
    _on_pack(art, layer)
    _hide(art, (int(cx - r), int(cy - r), int(cx + r), int(cy + r)))
    art.puddle = colour


def crushed_corner(art: PackArt, rng: random.Random) -> None:
    x0, y0, x1, y1 = art.face
    layer = Image.new("RGBA", art.image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    dark = (*_relief(art.fill, 0.45), 255)
    light = (*_relief(art.fill, 0.2), 255)
    crease = (*_relief(art.fill, 0.75), 255)
    if art.product.shape == "box":
        s = rng.randint(72, 110)
        corners = [(x0, y0, 1, 1), (x1, y0, -1, 1), (x0, y1, 1, -1), (x1, y1, -1, -1)]
        pick = {}

        def candidate() -> Box:
            cx, cy, sx, sy = rng.choice(corners)
            box = (
                min(cx, cx + sx * s),
                min(cy, cy + sy * s),
                max(cx, cx + sx * s),
                max(cy, cy + sy * s),
            )
            pick[box] = (cx, cy, sx, sy)
            return box

        b = _place(art, rng, candidate)
        cx, cy, sx, sy = pick[b]
        a = (cx + sx * s * rng.uniform(0.8, 1.1), cy)
        c = (cx, cy + sy * s * rng.uniform(0.8, 1.1))
        cut: list[Point] = [a]
        for i in range(1, 6):
            t = i / 6
            px, py = a[0] + (c[0] - a[0]) * t, a[1] + (c[1] - a[1]) * t
            j = rng.uniform(-9, 9)
            cut.append((px + j * sx, py + j * sy))
        cut.append(c)
        band = [(px + sx * 26, py + sy * 26) for px, py in cut]
        draw.polygon(cut + band[::-1], fill=dark)
        for px, py in cut[1:-1]:
            draw.line(
                [(px, py), (px + sx * rng.uniform(30, 55), py + sy * rng.uniform(30, 55))],
                fill=crease,
                width=3,
            )
            draw.line(
                [(px + 4 * sx, py), (px + sx * rng.uniform(24, 40), py + sy * rng.uniform(18, 34))],
                fill=light,
                width=2,
            )
        _on_pack(art, layer)
        _erase(art, [(cx, cy), *cut])
        _hide(art, _bounds([(cx, cy), *band]))
        return
    # bottle: one side of the body crushed in
    rx, ry = rng.randint(18, 30), rng.randint(44, 70)

    def dent() -> Box:
        ex = rng.choice((x0, x1))
        ey = rng.uniform(y0 + ry + 10, y1 - ry - 10)
        return (int(ex - rx - 24), int(ey - ry - 10), int(ex + rx + 24), int(ey + ry + 10))

    b = _place(art, rng, dent, tries=20)
    ex, ey = (x0 if b[0] < x0 else x1), (b[1] + b[3]) / 2
    draw.ellipse((ex - rx - 14, ey - ry - 10, ex + rx + 14, ey + ry + 10), outline=dark, width=12)
    inward = 1 if ex == x0 else -1
    for k in range(3):
        off = (k - 1) * ry * 0.45
        end = (ex + inward * (rx + rng.uniform(16, 24)), ey + off + rng.uniform(-10, 10))
        draw.line([(ex + inward * rx, ey + off), end], fill=crease, width=3)
    _on_pack(art, layer)
    ImageDraw.Draw(art.image).ellipse((ex - rx, ey - ry, ex + rx, ey + ry), fill=(0, 0, 0, 0))
    _hide(art, (int(ex - rx - 24), int(ey - ry - 10), int(ex + rx + 24), int(ey + ry + 10)))


def broken_seal(art: PackArt, rng: random.Random) -> None:
    x0, y0, x1, _ = art.face
    if art.product.shape == "box":
        draw = ImageDraw.Draw(art.image)
        width = rng.randint(70, 130)
        ox = rng.uniform(x0 + 20, x1 - 20 - width)
        tape = art.parts.get("tape")
        if tape is not None:
            ox = max(x0 + 10, min(x1 - 10 - width, (tape[0] + tape[2]) / 2 - width / 2))
        depth = rng.randint(18, 30)
        top = art.parts["top"][1]
        opening: list[Point] = [(ox, float(top))]
        for i in range(1, 7):
            opening.append((ox + width * i / 7, y0 + depth * rng.uniform(0.5, 1.2)))
        opening.append((ox + width, top))
        draw.polygon(opening, fill=(36, 28, 22, 255))
        lean = rng.choice((-1, 1)) * rng.uniform(10, 30)
        fh = rng.randint(34, 52)
        hinge_l, hinge_r = (ox, y0), (ox + width, y0)
        flap = [
            hinge_l,
            hinge_r,
            (hinge_r[0] + lean, y0 - fh),
            (hinge_l[0] + lean, y0 - fh - rng.randint(-6, 6)),
        ]
        draw.polygon(flap, fill=(*_relief(art.fill, 0.3), 255), outline=(30, 25, 20, 255))
        draw.line([hinge_l, hinge_r], fill=(30, 25, 20, 255), width=3)
        if tape is not None:
            for end in (tape[0], tape[2]):
                draw.line(
                    [(end, tape[3] - 6), (end + rng.uniform(-8, 8), tape[3] + 10)],
                    fill=(160, 150, 130, 255),
                    width=5,
                )
        _hide(art, _bounds(opening))
        return
    cap, neck = art.parts["cap"], art.parts["neck"]
    cap_fill = art.cap_fill or (240, 240, 240)
    draw = ImageDraw.Draw(art.image)
    draw.rectangle((cap[0] - 2, cap[1] - 2, cap[2] + 2, cap[3] + 8), fill=(0, 0, 0, 0))
    draw.rectangle((neck[0], neck[1] - 4, neck[2], neck[3]), fill=(*shade(art.fill, 0.92), 255))
    draw.ellipse((neck[0] + 2, neck[1] - 10, neck[2] - 2, neck[1] + 6), fill=(20, 18, 18, 255))
    ring = shade(cap_fill, 0.8)
    gap = rng.uniform(0.3, 0.6)
    mid = neck[0] + (neck[2] - neck[0]) * gap
    draw.rectangle((neck[0] - 4, neck[1] + 6, mid - 8, neck[1] + 14), fill=(*ring, 255))
    draw.rectangle((mid + 10, neck[1] + 10, neck[2] + 4, neck[1] + 18), fill=(*ring, 255))
    cw, chh = cap[2] - cap[0], cap[3] - cap[1]
    cap_img = Image.new("RGBA", (cw + 4, chh + 4), (0, 0, 0, 0))
    ImageDraw.Draw(cap_img).rounded_rectangle(
        (2, 2, cw + 2, chh + 2), radius=6, fill=(*cap_fill, 255)
    )
    angle = rng.choice((-1, 1)) * rng.uniform(30, 80)
    cap_img = cap_img.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
    side = 1 if angle < 0 else -1
    px = int((cap[0] + cap[2]) / 2 + side * rng.uniform(cw * 0.7, cw * 1.1) - cap_img.width / 2)
    py = int(cap[1] - rng.uniform(-10, 10))
    px = max(0, min(art.image.width - cap_img.width, px))
    py = max(0, min(art.image.height - cap_img.height, py))
    art.image.alpha_composite(cap_img, (px, py))


APPLY: dict[str, Callable[[PackArt, random.Random], None]] = {
    "tear": tear,
    "spill": spill,
    "crushed_corner": crushed_corner,
    "broken_seal": broken_seal,
}


def damage(art: PackArt, kinds: list[str], rng: random.Random) -> None:
    """Paint each kind in ``kinds`` onto ``art`` (in place)."""
    for kind in kinds:
        APPLY[kind](art, rng)


def sticker(art: PackArt, rng: random.Random) -> None:
    """A benign price/barcode sticker (not damage), placed where it covers the least text."""
    x0, y0, x1, y1 = art.face
    w, h = rng.randint(56, 76), rng.randint(34, 44)

    def candidate() -> Box:
        sx = rng.choice((x0 + 8, x1 - w - 8))
        sy = rng.choice((y0 + 8, y1 - h - 8))
        return (sx, sy, sx + w, sy + h)

    b = _place(art, rng, candidate)
    draw = ImageDraw.Draw(art.image)
    draw.rectangle(b, fill=(250, 250, 246, 255), outline=(200, 200, 196, 255))
    x = b[0] + 6
    while x < b[2] - 6:
        bar = rng.choice((1, 2, 3))
        draw.rectangle((x, b[1] + 6, x + bar - 1, b[3] - 8), fill=(20, 20, 20, 255))
        x += bar + rng.choice((1, 2, 3))
    _hide(art, b)

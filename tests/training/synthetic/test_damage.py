import random

import pytest
from PIL import ImageChops

from training.synthetic.damage import KINDS, damage, sticker
from training.synthetic.drawing import PackArt, draw_pack
from training.synthetic.products import PRODUCT_TYPES, Product


def _product(shape: str, colour: str) -> Product:
    ptype = next(t for t in PRODUCT_TYPES if t.shape == shape)
    return Product("Halcryn", ptype, ptype.sizes[0], 2, colour, None, "04/2027")


def _art(shape: str, colour: str, seed: int) -> PackArt:
    return draw_pack(_product(shape, colour), random.Random(seed))


def _changed(a: PackArt, b: PackArt) -> int:
    diff = ImageChops.difference(a.image.convert("RGB"), b.image.convert("RGB")).convert("L")
    return sum(diff.histogram()[25:])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", ["box", "bottle"])
@pytest.mark.parametrize("colour", ["black", "yellow", "brown"])
def test_each_damage_kind_visibly_changes_the_pack(kind: str, shape: str, colour: str) -> None:
    intact = _art(shape, colour, 11)
    damaged = _art(shape, colour, 11)
    damage(damaged, [kind], random.Random(12))
    assert _changed(intact, damaged) >= 1200, f"{kind} on a {colour} {shape} is barely visible"
    assert (damaged.puddle is not None) == (kind == "spill")


def test_damage_avoids_the_brand_mostly_and_reports_what_it_covers() -> None:
    hidden_brand = 0
    for seed in range(40):
        art = _art("box" if seed % 2 else "bottle", "green", seed)
        damage(art, [KINDS[seed % 4]], random.Random(seed))
        assert art.hidden <= set(art.text)
        assert art.shown() == set(art.text) - art.hidden
        hidden_brand += "brand" in art.hidden
    assert hidden_brand <= 4


def test_a_sticker_is_not_damage_but_may_cover_text() -> None:
    art = _art("box", "blue", 3)
    before = art.image.copy()
    sticker(art, random.Random(3))
    assert ImageChops.difference(before.convert("RGB"), art.image.convert("RGB")).getbbox()
    assert art.puddle is None

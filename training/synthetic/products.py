"""The invented product world: a fixed brand pool, product types, and seeded product sampling.

Every brand name here is made up for this generator (none is meant to be a real trademark).
A :class:`Product` holds the canonical attribute values; what a photo *shows* of them is decided
by :mod:`training.synthetic.drawing`, and the AE label is built from that (see
:func:`attribute_values`). Canonical forms: Size ``"500 ml"``/``"200 g"``/``"1.5 l"``, Count
the number as text (``"12"``), TargetGender ``"Men"``/``"Women"``, ExpiryDate ``"MM/YYYY"``,
Color one of :data:`workers.backends.ocr.COLOURS`' names.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from workers.backends.ocr import COLOURS

Shape = Literal["box", "bottle"]

#: Invented brand names (>= 24), fixed order; the train/test assignment is seeded.
BRANDS: tuple[str, ...] = (
    "Alvendra",
    "Brisquo",
    "Corvella",
    "Dunmarra",
    "Elvatri",
    "Gorvani",
    "Halcryn",
    "Ibrexa",
    "Jovarel",
    "Kestrova",
    "Lumbrin",
    "Morvique",
    "Ostravi",
    "Pellquin",
    "Quorvan",
    "Rivelka",
    "Sombrel",
    "Tavinor",
    "Ulvessa",
    "Varnicq",
    "Wystelle",
    "Xandrel",
    "Yorvane",
    "Zelquor",
    "Brambleth",
    "Crestivo",
    "Dovarin",
    "Frellic",
)


@dataclass(frozen=True)
class ProductType:
    name: str
    shape: Shape
    category: str
    #: Size choices in the canonical form ("500 ml").
    sizes: tuple[str, ...]
    #: Pack counts; 1 means a single item (no count printed).
    counts: tuple[int, ...]
    #: Whether a target gender may be printed.
    gendered: bool
    #: Whether an expiry date may be printed.
    perishable: bool


PRODUCT_TYPES: tuple[ProductType, ...] = (
    ProductType(
        "Shampoo",
        "bottle",
        "Beauty & Personal Care",
        ("250 ml", "400 ml", "500 ml", "750 ml"),
        (1, 2, 3),
        True,
        True,
    ),
    ProductType(
        "Body Wash",
        "bottle",
        "Beauty & Personal Care",
        ("300 ml", "500 ml", "1 l"),
        (1, 2, 4),
        True,
        True,
    ),
    ProductType(
        "Conditioner",
        "bottle",
        "Beauty & Personal Care",
        ("200 ml", "350 ml", "500 ml"),
        (1, 2),
        True,
        True,
    ),
    ProductType("Hand Soap", "bottle", "Household", ("250 ml", "500 ml"), (1, 3, 6), False, False),
    ProductType(
        "Dish Soap", "bottle", "Household", ("450 ml", "750 ml", "1 l"), (1, 2), False, False
    ),
    ProductType(
        "Olive Oil", "bottle", "Grocery", ("500 ml", "750 ml", "1 l"), (1, 2, 6), False, True
    ),
    ProductType(
        "Orange Juice", "bottle", "Grocery", ("330 ml", "1 l", "1.5 l"), (1, 6, 12), False, True
    ),
    ProductType(
        "Mouthwash", "bottle", "Beauty & Personal Care", ("250 ml", "500 ml"), (1, 2), False, True
    ),
    ProductType("Cereal", "box", "Grocery", ("375 g", "500 g", "750 g"), (1, 2, 4), False, True),
    ProductType("Tea Bags", "box", "Grocery", ("50 g", "100 g", "200 g"), (1, 4, 6), False, True),
    ProductType("Cookies", "box", "Grocery", ("150 g", "200 g", "300 g"), (1, 3, 12), False, True),
    ProductType("Pasta", "box", "Grocery", ("500 g", "1 kg"), (1, 4, 8), False, True),
    ProductType("Coffee Pods", "box", "Grocery", ("100 g", "200 g"), (1, 10, 24), False, True),
    ProductType(
        "Deodorant",
        "bottle",
        "Beauty & Personal Care",
        ("50 ml", "150 ml", "250 ml"),
        (1, 2, 3),
        True,
        False,
    ),
    ProductType("Tissues", "box", "Household", ("200 g", "300 g"), (1, 3, 6), False, False),
    ProductType("Batteries", "box", "Electronics", ("AA", "AAA"), (4, 8, 12, 24), False, True),
    ProductType(
        "Face Cream",
        "box",
        "Beauty & Personal Care",
        ("50 ml", "75 ml", "100 ml"),
        (1, 2),
        True,
        True,
    ),
)

COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)
GENDERS: tuple[str, ...] = ("Men", "Women")


@dataclass(frozen=True)
class Product:
    """One product's canonical attributes (what the listing is and what a pack carries)."""

    brand: str
    product_type: ProductType
    size: str
    count: int
    colour: str
    gender: str | None
    expiry: str | None

    @property
    def shape(self) -> Shape:
        return self.product_type.shape

    def key(self) -> tuple[str, str, str, int]:
        """What makes two products "the same product" for PM."""
        return (self.brand, self.product_type.name, self.size, self.count)


def sample_product(rng: random.Random, brand: str) -> Product:
    ptype = rng.choice(PRODUCT_TYPES)
    gender = rng.choice(GENDERS) if ptype.gendered and rng.random() < 0.6 else None
    expiry = None
    if ptype.perishable and rng.random() < 0.6:
        expiry = f"{rng.randint(1, 12):02d}/{rng.randint(2026, 2029)}"
    return Product(
        brand=brand,
        product_type=ptype,
        size=rng.choice(ptype.sizes),
        count=rng.choice(ptype.counts),
        colour=rng.choice(COLOUR_NAMES),
        gender=gender,
        expiry=expiry,
    )


def different_product(rng: random.Random, listed: Product, brands: Sequence[str]) -> Product:
    """A delivered item that is *not* the listed product: another brand, size or type.

    ``brands`` are the candidates for a brand swap (the listed product's own split, so a
    test brand never turns up in a training example).
    """
    others = [b for b in brands if b != listed.brand]
    options = ["brand", "type"]
    if len(listed.product_type.sizes) > 1:
        options.append("size")
    what = rng.choice(options) if others else rng.choice([o for o in options if o != "brand"])
    if what == "brand":
        return replace(listed, brand=rng.choice(others))
    if what == "size":
        return replace(
            listed, size=rng.choice([s for s in listed.product_type.sizes if s != listed.size])
        )
    same_shape = [
        t for t in PRODUCT_TYPES if t.shape == listed.shape and t.name != listed.product_type.name
    ]
    ptype = rng.choice(same_shape)
    return replace(
        listed,
        product_type=ptype,
        size=rng.choice(ptype.sizes),
        count=rng.choice(ptype.counts),
        gender=listed.gender if ptype.gendered else None,
        expiry=listed.expiry if ptype.perishable else None,
    )


def count_phrase(count: int) -> str:
    return f"Pack of {count}"


def title(product: Product) -> str:
    """Listing title: brand, type, gender, size, count."""
    parts = [product.brand, product.product_type.name]
    if product.gender:
        parts.append(f"for {product.gender}")
    text = " ".join(parts) + f", {product.size}"
    if product.count > 1:
        text += f", {count_phrase(product.count)}"
    return text


def description(product: Product) -> str:
    pt = product.product_type
    what = "bottle" if pt.shape == "bottle" else "box"
    sentences = [
        f"{product.brand} {pt.name.lower()} in a {product.colour} {what}, {product.size} each.",
    ]
    if product.count > 1:
        sentences.append(f"Sold as a pack of {product.count}.")
    if product.gender:
        sentences.append(f"Made for {product.gender.lower()}.")
    if product.expiry:
        sentences.append("Best before date printed on the pack.")
    return " ".join(sentences)


def brand_groups(seed: int, test_fraction: float, brands: Sequence[str] = BRANDS) -> dict[str, str]:
    """Brand -> ``"train"``/``"test"``, a seeded shuffle; at least one brand in each group."""
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be strictly between 0 and 1")
    order = sorted(brands)
    random.Random(f"brands:{seed}").shuffle(order)
    n_test = min(len(order) - 1, max(1, round(len(order) * test_fraction)))
    return {b: ("test" if i < n_test else "train") for i, b in enumerate(order)}

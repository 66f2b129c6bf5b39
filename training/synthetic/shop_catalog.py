"""The synthetic shop's world: product types in complementary pairs, attributes, a seeded
catalog of every brand x type, and short reviews that mention some attributes and not others.

Ten complementary pairs of product types (:data:`PAIRS`) in five categories, two pairs each;
a type's complement is the other type of its pair, always of the same category. Every type has
its own fine-grained category (``Kitchen > Drinkware > Mugs``), its materials and its sizes;
every product has a colour (:data:`COLOURS`). Titles read ``<Brand> <Colour> <Material>
<Type>, <Size>`` (``Alvendra Red Ceramic Coffee Mug, 350 ml``), so every attribute a query can
ask for is a word of the title.

Reviews: each product has 2-3 one-sentence reviews; its first mentions one review aspect
(:data:`ASPECTS`) and each further one mentions another aspect or none (a filler that names no
aspect). A review that mentions an aspect always contains the aspect's keyword
(:data:`ASPECT_KEYWORDS`), and no other review does: AP's rule rests on that.

Everything is invented (brands from :data:`training.synthetic.products.BRANDS`); the same seed
gives the same catalog and reviews.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from training.synthetic.claims import BASE_TIME
from training.synthetic.products import BRANDS

#: Product colours (title words; never a material or size word).
COLOURS: tuple[str, ...] = ("Red", "Blue", "Green", "Black", "White", "Grey", "Yellow", "Pink")


@dataclass(frozen=True)
class ShopType:
    """A product type: its name (a title's last words), category, fine-grained category (CC's
    answer), materials and sizes (title words, canonical form)."""

    name: str
    category: str
    fine: str
    materials: tuple[str, ...]
    sizes: tuple[str, ...]


def _t(name: str, category: str, fine: str, materials: str, sizes: str) -> ShopType:
    return ShopType(
        name, category, f"{category} > {fine}", tuple(materials.split(",")), tuple(sizes.split(","))
    )


#: Complementary pairs (a type's complement is the other of its pair); two per category.
PAIRS: tuple[tuple[ShopType, ShopType], ...] = (
    (
        _t("Coffee Mug", "Kitchen", "Drinkware > Mugs", "Ceramic,Glass,Steel", "300 ml,450 ml"),
        _t(
            "Coaster Set", "Kitchen", "Table Linen > Coasters", "Cork,Slate,Bamboo", "4 pack,6 pack"
        ),
    ),
    (
        _t("Frying Pan", "Kitchen", "Cookware > Pans", "Cast Iron,Steel,Aluminium", "24 cm,28 cm"),
        _t("Pan Lid", "Kitchen", "Cookware > Lids", "Glass,Steel", "24 cm,28 cm"),
    ),
    (
        _t(
            "Camping Tent",
            "Outdoor",
            "Camping > Tents",
            "Nylon,Polyester,Canvas",
            "2 person,4 person",
        ),
        _t(
            "Tent Footprint",
            "Outdoor",
            "Camping > Groundsheets",
            "Nylon,Polyester",
            "2 person,4 person",
        ),
    ),
    (
        _t("Hiking Backpack", "Outdoor", "Hiking > Backpacks", "Nylon,Canvas", "30 l,45 l"),
        _t("Rain Cover", "Outdoor", "Hiking > Pack Covers", "Nylon,Polyester", "30 l,45 l"),
    ),
    (
        _t("Desk Lamp", "Office", "Lighting > Desk Lamps", "Metal,Plastic,Wood", "40 cm,55 cm"),
        _t("LED Bulb", "Office", "Lighting > Bulbs", "Glass,Plastic", "5 watt,9 watt"),
    ),
    (
        _t("Notebook", "Office", "Paper > Notebooks", "Leather,Cardboard,Linen", "A5,A4"),
        _t("Gel Pen", "Office", "Writing > Pens", "Plastic,Metal", "0.5 mm,0.7 mm"),
    ),
    (
        _t("Dog Bed", "Pets", "Dog Supplies > Beds", "Fleece,Cotton,Suede", "small,large"),
        _t("Dog Blanket", "Pets", "Dog Supplies > Blankets", "Fleece,Cotton", "small,large"),
    ),
    (
        _t("Cat Bowl", "Pets", "Cat Supplies > Bowls", "Ceramic,Steel,Plastic", "200 ml,400 ml"),
        _t("Feeding Mat", "Pets", "Cat Supplies > Mats", "Silicone,Rubber", "small,large"),
    ),
    (
        _t("Yoga Mat", "Sports", "Yoga > Mats", "Rubber,Cork,Foam", "4 mm,6 mm"),
        _t("Yoga Block", "Sports", "Yoga > Blocks", "Cork,Foam,Bamboo", "small,large"),
    ),
    (
        _t("Running Shoes", "Sports", "Running > Shoes", "Mesh,Knit,Leather", "size 8,size 10"),
        _t("Sport Socks", "Sports", "Running > Socks", "Cotton,Wool,Nylon", "size 8,size 10"),
    ),
)
TYPES: tuple[ShopType, ...] = tuple(t for pair in PAIRS for t in pair)
TYPE_BY_NAME = MappingProxyType({t.name: t for t in TYPES})
COMPLEMENT = MappingProxyType(
    {a.name: b.name for a, b in PAIRS} | {b.name: a.name for a, b in PAIRS}
)
CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(t.category for t in TYPES))

#: Review aspects: what AP asks about. Each aspect's keyword is in every review sentence that
#: mentions it and in no other review sentence.
ASPECTS: tuple[str, ...] = ("colour", "material", "size", "weight", "cleaning", "warranty")
ASPECT_KEYWORDS = MappingProxyType(
    {
        "colour": "colour",
        "material": "material",
        "size": "size",
        "weight": "weighs",
        "cleaning": "clean",
        "warranty": "warranty",
    }
)
#: AP's question per aspect (``{type}``: the type's name in lower case).
QUESTIONS = MappingProxyType(
    {
        "colour": "What colour is the {type}?",
        "material": "What material is the {type} made of?",
        "size": "What size is the {type}?",
        "weight": "How much does the {type} weigh?",
        "cleaning": "Is the {type} easy to clean?",
        "warranty": "Does the {type} come with a warranty?",
    }
)
_MENTIONS = MappingProxyType(
    {
        "colour": ("The {colour} colour looks great.", "Nice {colour} colour, as pictured."),
        "material": ("The {material} material feels solid.", "Good {material} material."),
        "size": ("The {size} size is just right.", "Size is {size}, as described."),
        "weight": ("It weighs very little.", "It weighs more than I expected."),
        "cleaning": ("Easy to clean after use.", "Hard to clean, sadly."),
        "warranty": ("It has a two year warranty.", "The warranty is only six months."),
    }
)
#: Review sentences that mention no aspect (and contain no aspect keyword).
FILLERS: tuple[str, ...] = (
    "Arrived quickly and well packed.",
    "Good value for the price.",
    "Bought it as a gift, they loved it.",
    "Does the job, no complaints.",
    "Would buy again from this shop.",
    "Not bad, but delivery was slow.",
)


@dataclass(frozen=True)
class ShopProduct:
    product_id: str
    brand: str
    type: ShopType
    colour: str
    material: str
    size: str

    @property
    def title(self) -> str:
        return f"{self.brand} {self.colour} {self.material} {self.type.name}, {self.size}"

    def attribute(self, name: str) -> str:
        """``colour``, ``material`` or ``size``."""
        value = {"colour": self.colour, "material": self.material, "size": self.size}[name]
        return value

    def event(self, i: int) -> dict[str, Any]:
        """The catalog ProductEvent (JSON-ready)."""
        return {
            "product_id": self.product_id,
            "title": self.title,
            "category": self.type.fine,
            "brand": self.brand,
            "description": (
                f"{self.colour} {self.material.lower()} {self.type.name.lower()} "
                f"by {self.brand}, {self.size}."
            ),
            "event_time": BASE_TIME + float(i),
        }


def build_catalog(seed: int, variants: int = 2) -> list[ShopProduct]:
    """Every brand x type, ``variants`` products each (distinct colours), seeded attributes."""
    rng = random.Random(f"{seed}:shop-catalog")
    products: list[ShopProduct] = []
    for brand in BRANDS:
        for kind in TYPES:
            for colour in rng.sample(COLOURS, variants):
                products.append(
                    ShopProduct(
                        f"shop{seed}-p{len(products):05d}",
                        brand,
                        kind,
                        colour,
                        rng.choice(kind.materials),
                        rng.choice(kind.sizes),
                    )
                )
    return products


def mention(product: ShopProduct, aspect: str, rng: random.Random) -> str:
    """A review sentence about ``aspect`` of the product (it contains the aspect's keyword)."""
    template = rng.choice(_MENTIONS[aspect])
    text = template.format(
        colour=product.colour.lower(), material=product.material.lower(), size=product.size
    )
    return text[0].upper() + text[1:]


def build_reviews(
    products: list[ShopProduct], seed: int
) -> tuple[list[dict[str, Any]], dict[str, set[str]]]:
    """2-3 ReviewEvents (JSON-ready) per product and, per product id, the aspects they
    mention (the first review always mentions one; each other one an aspect or a filler)."""
    rng = random.Random(f"{seed}:shop-reviews")
    reviews: list[dict[str, Any]] = []
    mentioned: dict[str, set[str]] = {}
    for product in products:
        n = rng.choice((2, 3))
        aspects = rng.sample(ASPECTS, n)
        said: set[str] = set()
        for k, aspect in enumerate(aspects):
            if k == 0 or rng.random() < 0.5:
                text, rating = mention(product, aspect, rng), rng.choice((3, 4, 5))
                said.add(aspect)
            else:
                text, rating = rng.choice(FILLERS), rng.choice((2, 3, 4, 5))
            reviews.append(
                {
                    "review_id": f"{product.product_id}-r{k}",
                    "product_id": product.product_id,
                    "text": text,
                    "rating": rating,
                    "user_id": f"shop{seed}-u{rng.randrange(500):03d}",
                    "event_time": BASE_TIME + float(len(reviews)),
                }
            )
        mentioned[product.product_id] = said
    return reviews, mentioned

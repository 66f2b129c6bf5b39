"""The invented second-hand items of OPAL's listing drafts: four categories, their aspect
schemas, seeded items, and the reference (grounded) and seller (noisy) listings of an item.

Every category's schema (:class:`Category`, shaped like an ``AspectSchemaEvent`` by
:meth:`Category.schema_event`) mixes aspects a photo shows with aspects it cannot:

- ``colour``: the item's fill (always shown; values are the OCR captioner's colour names,
  capitalised: ``"Red"``, ``"Navy"``);
- ``shape``: the drawn silhouette (a sneaker's collar height, a t-shirt's sleeves);
- ``print``: text printed on the item (the brand always; capacity, material and the like
  when :attr:`Item.printed` lists them; a ``Yes``/``No`` aspect prints only its ``Yes``);
- ``None``: never on the photo (a shoe or shirt size, Department, Model Year, Country of
  Manufacture).

Required aspects are always shown. The **reference listing** (:func:`reference_aspects`,
:func:`reference_title`) keeps only what the photo shows; the **seller listing**
(:func:`seller_title`, :func:`seller_aspects`) is what a seller types: every value they know,
unshown ones included, sometimes a key outside the schema, and a title with ungrounded tokens
("SHIP FAST", "L@@K", style codes, sizes the photo does not show), which data refinement
(OPAL's MACE) should drop. Brands are :data:`~training.synthetic.products.BRANDS`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from workers.backends.ocr import COLOURS

Shown = Literal["colour", "shape", "print"] | None

COLOUR_VALUES: tuple[str, ...] = tuple(name.capitalize() for name in COLOURS)
YES_NO: tuple[str, ...] = ("Yes", "No")
COUNTRIES: tuple[str, ...] = ("China", "Vietnam", "Portugal", "Italy", "Mexico", "India")
DEPARTMENTS: tuple[str, ...] = ("Men", "Women", "Unisex")
YEARS: tuple[str, ...] = tuple(str(y) for y in range(2016, 2026))


@dataclass(frozen=True)
class Aspect:
    """One aspect of a category's schema; ``shown`` says how a photo can show it."""

    name: str
    required: bool = False
    #: Allowed values (``None``: free text, drawn from ``choices``).
    values: tuple[str, ...] | None = None
    shown: Shown = None
    #: Values for free-text aspects (the seller's; never in ``values``' place in the schema).
    choices: tuple[str, ...] = ()
    #: Chance that a ``print`` aspect is printed on the item.
    printed: float = 0.0

    def options(self) -> tuple[str, ...]:
        return self.values if self.values is not None else self.choices


@dataclass(frozen=True)
class Category:
    """A listing category: its identifier, the noun of its titles and its aspect schema."""

    name: str
    noun: str
    aspects: tuple[Aspect, ...]

    def aspect(self, name: str) -> Aspect:
        return next(a for a in self.aspects if a.name == name)

    def schema_event(self, event_time: float | None = None) -> dict[str, Any]:
        """The schema as an ``AspectSchemaEvent``-shaped dict (``values`` ``None`` when free)."""
        return {
            "category": self.name,
            "aspects": [
                {
                    "name": a.name,
                    "required": a.required,
                    "values": list(a.values) if a.values is not None else None,
                }
                for a in self.aspects
            ],
            "event_time": event_time,
        }


BRAND = Aspect("Brand", required=True, shown="print")
COLOR = Aspect("Color", required=True, values=COLOUR_VALUES, shown="colour")
COUNTRY = Aspect("Country of Manufacture", choices=COUNTRIES)
DEPARTMENT = Aspect("Department", values=DEPARTMENTS)
MODEL_YEAR = Aspect("Model Year", choices=YEARS)

CATEGORIES: tuple[Category, ...] = (
    Category(
        "sneakers",
        "Sneakers",
        (
            BRAND,
            COLOR,
            Aspect("Type", required=True, values=("Low Top", "High Top"), shown="shape"),
            DEPARTMENT,
            Aspect("US Shoe Size", values=tuple(f"{s / 2:g}" for s in range(12, 27))),
            MODEL_YEAR,
            COUNTRY,
        ),
    ),
    Category(
        "mugs",
        "Mug",
        (
            BRAND,
            COLOR,
            Aspect(
                "Material", values=("Ceramic", "Stoneware", "Porcelain"), shown="print", printed=0.6
            ),
            Aspect("Capacity", values=("250 ml", "350 ml", "450 ml"), shown="print", printed=0.6),
            Aspect("Dishwasher Safe", values=YES_NO, shown="print", printed=0.7),
            COUNTRY,
        ),
    ),
    Category(
        "t-shirts",
        "T-Shirt",
        (
            BRAND,
            COLOR,
            Aspect(
                "Sleeve Length",
                required=True,
                values=("Short Sleeve", "Long Sleeve"),
                shown="shape",
            ),
            Aspect("Size", values=("XS", "S", "M", "L", "XL", "XXL")),
            DEPARTMENT,
            Aspect("Material", values=("100% Cotton", "Polyester", "Cotton Blend")),
            COUNTRY,
        ),
    ),
    Category(
        "water-bottles",
        "Water Bottle",
        (
            BRAND,
            COLOR,
            Aspect("Capacity", values=("500 ml", "750 ml", "1 l"), shown="print", printed=0.6),
            Aspect(
                "Material",
                values=("Stainless Steel", "Plastic", "Glass"),
                shown="print",
                printed=0.6,
            ),
            Aspect("Insulated", values=YES_NO, shown="print", printed=0.7),
            MODEL_YEAR,
            COUNTRY,
        ),
    ),
)
CATEGORY_BY_NAME: dict[str, Category] = {c.name: c for c in CATEGORIES}

#: Seller noise: hype, shipping and condition talk no photo grounds.
HYPE: tuple[str, ...] = (
    "SHIP FAST",
    "L@@K",
    "FREE SHIPPING",
    "RARE!!",
    "NWT",
    "BNIB",
    "MUST SEE",
    "FAST SHIP",
    "GREAT GIFT",
)
#: Keys sellers add that no schema has.
OFF_SCHEMA: tuple[tuple[str, str], ...] = (
    ("Condition", "New with tags"),
    ("Shipping", "Fast"),
    ("Bundle", "No"),
)


@dataclass(frozen=True)
class Item:
    """One item: its category, colour name, every aspect's value, and what is printed on it."""

    category: Category
    #: A :data:`workers.backends.ocr.COLOURS` name (``Color`` is its capitalised form).
    colour: str
    #: Aspect name -> value, for every aspect of the schema (the seller knows them all).
    values: Mapping[str, str]
    #: Names of the ``print`` aspects printed on the item besides the brand.
    printed: tuple[str, ...]

    @property
    def brand(self) -> str:
        return self.values["Brand"]

    def shown(self) -> tuple[str, ...]:
        """The aspects a photo of the item shows, in schema order."""
        return tuple(
            a.name
            for a in self.category.aspects
            if a.shown in ("colour", "shape") or a.name == "Brand" or a.name in self.printed
        )


def print_text(aspect: str, value: str) -> str | None:
    """How an aspect's value is printed on an item (``None``: a ``No`` is never printed)."""
    if value == "No":
        return None
    if value == "Yes":
        return aspect.upper()
    return value.upper() if aspect == "Material" else value


def sample_item(rng: random.Random, brand: str, category: Category | None = None) -> Item:
    """A seeded item of ``brand`` (in ``category`` or one drawn from :data:`CATEGORIES`)."""
    category = category or rng.choice(CATEGORIES)
    colour = rng.choice(tuple(COLOURS))
    values: dict[str, str] = {}
    printed: list[str] = []
    for a in category.aspects:
        if a.name == "Brand":
            values[a.name] = brand
        elif a.name == "Color":
            values[a.name] = colour.capitalize()
        else:
            values[a.name] = rng.choice(a.options())
        if a.printed and rng.random() < a.printed and print_text(a.name, values[a.name]):
            printed.append(a.name)
    return Item(category, colour, values, tuple(printed))


def reference_aspects(item: Item) -> dict[str, str]:
    """The aspects the photo shows, in schema order (the gold answer's ``aspects``)."""
    return {name: item.values[name] for name in item.shown()}


def reference_title(item: Item) -> str:
    """A title of shown facts only: brand, shape or printed words, the noun, size, colour."""
    v, shown = item.values, set(item.shown())
    words = [item.brand]
    for name in ("Type", "Sleeve Length", "Insulated", "Material"):
        if name in shown and v[name] != "No":
            words.append(name if v[name] == "Yes" else v[name])
    parts = [" ".join([*words, item.category.noun])]
    if "Capacity" in shown:
        parts.append(v["Capacity"])
    if "Dishwasher Safe" in shown:
        parts.append("Dishwasher Safe")
    parts.append(v["Color"])
    return ", ".join(parts)


def _style_code(rng: random.Random) -> str:
    letters = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2))
    code = f"{letters}{rng.randint(1000, 9999)}-{rng.randint(0, 999):03d}"
    return rng.choice([f"Style {code}", f"SKU {code}", code])


def _unshown_tokens(item: Item, rng: random.Random) -> list[str]:
    """Seller words for aspects the photo does not show (sizes, department, year, country)."""
    v, shown = item.values, set(item.shown())
    tokens: list[str] = []
    if "US Shoe Size" in v:
        tokens.append(rng.choice(["Size {}", "Sz {}", "US {}"]).format(v["US Shoe Size"]))
    if "Size" in v:
        tokens.append(rng.choice(["Size {}", "Sz {}", "Sz. {}"]).format(v["Size"]))
    if "Department" in v and rng.random() < 0.6:
        tokens.append({"Men": "Mens", "Women": "Womens", "Unisex": "Unisex"}[v["Department"]])
    if "Model Year" in v and rng.random() < 0.4:
        tokens.append(v["Model Year"])
    if rng.random() < 0.3:
        tokens.append(f"Made in {v['Country of Manufacture']}")
    if "Capacity" in v and "Capacity" not in shown and rng.random() < 0.5:
        tokens.append(v["Capacity"].replace(" ", "").upper())
    return tokens


def seller_title(item: Item, rng: random.Random) -> tuple[str, list[str]]:
    """A seller's title and the ungrounded tokens in it (at least one, each a whole piece).

    The grounded part is the reference title's words (sometimes upper-cased); the ungrounded
    tokens are hype, a style code and words for aspects the photo does not show.
    """
    tokens = _unshown_tokens(item, rng)
    if rng.random() < 0.5:
        tokens.append(_style_code(rng))
    tokens += rng.sample(HYPE, rng.choice([0, 1, 1, 2]))
    if not tokens:
        tokens.append(rng.choice(HYPE))
    base = reference_title(item).replace(",", "")
    if rng.random() < 0.4:
        base = base.upper()
    rng.shuffle(tokens)
    return " ".join([base, *tokens]), tokens


def seller_aspects(item: Item, rng: random.Random) -> dict[str, str]:
    """Every value the seller knows (shown or not), in schema order, maybe one off-schema key."""
    aspects = dict(item.values)
    if rng.random() < 0.3:
        key, value = rng.choice(OFF_SCHEMA)
        aspects[key] = value
    return aspects

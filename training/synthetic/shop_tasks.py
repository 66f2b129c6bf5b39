"""The synthetic shop's queries: one builder per CASLIE task, each drawing a query of a given
class from a pool of products (one split's brands) by a stated rule (:data:`RULES`).

A builder gets the class to draw (``yes``/``no`` or an option letter) and returns the query's
fields (without ``request_id``); the label is the class. Search queries (MPC, PSI) are lower
case: a type's name with one or two asked attributes (colour, material, size) in title words.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from schemas.tasks.mpc import ESCI_TO_LETTER
from training.synthetic.shop_catalog import (
    ASPECTS,
    COLOURS,
    COMPLEMENT,
    QUESTIONS,
    TYPE_BY_NAME,
    TYPES,
    ShopProduct,
)

#: The rules the labels follow, in words (the manifest carries them).
RULES = MappingProxyType(
    {
        "AP": "yes iff some review of the product mentions the asked aspect (its keyword is in "
        "the review text); no otherwise",
        "CC": "the option that is the product type's fine-grained category; the other options "
        "are fine-grained categories of other top categories",
        "PRP": "A (also buy): product 2's type complements product 1's; B (also view): same "
        "category, another type that is not the complement; C (similar): same type",
        "PSI": "yes iff the product is MPC's substitute: same type as the query, some asked "
        "attribute differs; no for exact, complement and irrelevant products",
        "MPC": "A exact: same type, every asked attribute matches the title; B substitute: "
        "same type, some asked attribute differs; C complement: the product's type complements "
        "the query's; D irrelevant: a type of another category",
        "SR": "if every history item has one brand, the next is the candidate of that brand; "
        "otherwise the history pairs types with their complements and the next is the "
        "candidate whose type complements the last item's type; no other candidate fits",
    }
)
ATTRIBUTES = ("colour", "material", "size")
#: Classes per task, in the order a balanced plan cycles through them.
CLASSES = MappingProxyType(
    {
        "AP": ("yes", "no"),
        "PSI": ("yes", "no"),
        "MPC": ("A", "B", "C", "D"),
        "PRP": ("A", "B", "C"),
        "CC": ("A", "B", "C", "D", "E"),
        "SR": ("A", "B", "C", "D", "E"),
    }
)
CC_OPTIONS = 5
SR_CANDIDATES = 5


@dataclass
class Pool:
    """The products a split's queries may name, indexed by type and by brand."""

    products: Sequence[ShopProduct]
    mentioned: dict[str, set[str]]
    by_type: dict[str, list[ShopProduct]] = field(default_factory=lambda: defaultdict(list))
    by_brand: dict[str, list[ShopProduct]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        for p in self.products:
            self.by_type[p.type.name].append(p)
            self.by_brand[p.brand].append(p)


def _search_text(kind: str, values: dict[str, str]) -> str:
    """``red ceramic coffee mug 300 ml``: colour and material before the type, size after."""
    words = [values[a].lower() for a in ("colour", "material") if a in values]
    words.append(kind.lower())
    if "size" in values:
        words.append(values["size"])
    return " ".join(words)


def _asked(rng: random.Random) -> list[str]:
    return sorted(rng.sample(ATTRIBUTES, rng.choice((1, 2))), key=ATTRIBUTES.index)


def _other_value(kind: str, attribute: str, value: str, rng: random.Random) -> str:
    t = TYPE_BY_NAME[kind]
    choices = {"colour": COLOURS, "material": t.materials, "size": t.sizes}[attribute]
    return rng.choice([c for c in choices if c != value])


def _random_values(kind: str, asked: list[str], rng: random.Random) -> dict[str, str]:
    t = TYPE_BY_NAME[kind]
    choices = {"colour": COLOURS, "material": t.materials, "size": t.sizes}
    return {a: rng.choice(choices[a]) for a in asked}


def esci(esci_class: str, pool: Pool, rng: random.Random) -> tuple[str, ShopProduct]:
    """A search query and a product of ESCI class ``E``/``S``/``C``/``I`` (MPC's rule)."""
    shown = rng.choice(pool.products)
    asked = _asked(rng)
    if esci_class == "E":
        values = {a: shown.attribute(a) for a in asked}
        return _search_text(shown.type.name, values), shown
    if esci_class == "S":
        values = {a: shown.attribute(a) for a in asked}
        for a in rng.sample(asked, rng.randint(1, len(asked))):
            values[a] = _other_value(shown.type.name, a, values[a], rng)
        return _search_text(shown.type.name, values), shown
    if esci_class == "C":
        kind = COMPLEMENT[shown.type.name]
        return _search_text(kind, _random_values(kind, asked, rng)), shown
    kind = rng.choice([t.name for t in TYPES if t.category != shown.type.category])
    return _search_text(kind, _random_values(kind, asked, rng)), shown


def mpc(label: str, pool: Pool, rng: random.Random) -> dict[str, Any]:
    letter_to_esci = {v: k for k, v in ESCI_TO_LETTER.items()}
    text, product = esci(letter_to_esci[label], pool, rng)
    return {"task": "MPC", "product_id": product.product_id, "query": text}


def psi(label: str, pool: Pool, rng: random.Random) -> dict[str, Any]:
    esci_class = "S" if label == "yes" else rng.choice(("E", "C", "I"))
    text, product = esci(esci_class, pool, rng)
    return {"task": "PSI", "product_id": product.product_id, "query": text}


def ap(label: str, pool: Pool, rng: random.Random) -> dict[str, Any]:
    product = rng.choice(pool.products)
    said = pool.mentioned[product.product_id]
    aspects = [a for a in ASPECTS if (a in said) == (label == "yes")]
    question = QUESTIONS[rng.choice(aspects)].format(type=product.type.name.lower())
    return {"task": "AP", "product_id": product.product_id, "question": question}


def cc(label: str, pool: Pool, rng: random.Random) -> dict[str, Any]:
    product = rng.choice(pool.products)
    others = [t.fine for t in TYPES if t.category != product.type.category]
    options = rng.sample(others, CC_OPTIONS - 1)
    options.insert(ord(label) - ord("A"), product.type.fine)
    return {"task": "CC", "product_id": product.product_id, "options": options}


def prp(label: str, pool: Pool, rng: random.Random) -> dict[str, Any]:
    first = rng.choice(pool.products)
    kind = first.type
    if label == "A":
        kinds = [COMPLEMENT[kind.name]]
    elif label == "B":
        kinds = [
            t.name
            for t in TYPES
            if t.category == kind.category and t.name not in (kind.name, COMPLEMENT[kind.name])
        ]
    else:
        kinds = [kind.name]
    second = rng.choice([p for p in pool.by_type[rng.choice(kinds)] if p is not first])
    return {
        "task": "PRP",
        "product_id": first.product_id,
        "other_product_id": second.product_id,
    }


def _sr_brand(pool: Pool, rng: random.Random) -> tuple[list[ShopProduct], ShopProduct]:
    brand = rng.choice(sorted(pool.by_brand))
    items = pool.by_brand[brand]
    history: list[ShopProduct] = []
    for p in rng.sample(items, len(items)):
        used = {h.type.name for h in history}
        if p.type.name not in used and COMPLEMENT[p.type.name] not in used:
            history.append(p)
    n = rng.choice((3, 4))
    last = history[n - 1].type.name
    nexts = [p for p in history[n:] if p.type.name != COMPLEMENT[last]]
    return history[:n], nexts[0]


def _sr_chain(pool: Pool, rng: random.Random) -> tuple[list[ShopProduct], ShopProduct]:
    pairs = rng.sample(TYPES, 3)
    while len({COMPLEMENT[t.name] for t in pairs} | {t.name for t in pairs}) < 6:
        pairs = rng.sample(TYPES, 3)
    n_pairs = rng.choice((1, 2))
    history: list[ShopProduct] = []
    for t in pairs[:n_pairs]:
        history += [rng.choice(pool.by_type[t.name]), rng.choice(pool.by_type[COMPLEMENT[t.name]])]
    history.append(rng.choice(pool.by_type[pairs[n_pairs].name]))
    while len({h.brand for h in history}) == 1:  # one brand would be the brand pattern
        history[-1] = rng.choice(pool.by_type[pairs[n_pairs].name])
    return history, rng.choice(pool.by_type[COMPLEMENT[history[-1].type.name]])


def sr(label: str, pool: Pool, rng: random.Random) -> dict[str, Any]:
    by_brand = rng.random() < 0.5
    history, nxt = (_sr_brand if by_brand else _sr_chain)(pool, rng)
    brands = {h.brand for h in history}
    complement = COMPLEMENT[history[-1].type.name]
    taken = {h.product_id for h in history} | {nxt.product_id}
    distractors = [
        p
        for p in pool.products
        if p.type.name != complement
        and p.product_id not in taken
        and not (by_brand and p.brand in brands)
    ]
    candidates = rng.sample(distractors, SR_CANDIDATES - 1)
    candidates.insert(ord(label) - ord("A"), nxt)
    return {
        "task": "SR",
        "history_product_ids": [h.product_id for h in history],
        "candidate_product_ids": [c.product_id for c in candidates],
    }


Builder = Callable[[str, Pool, random.Random], dict[str, Any]]
BUILDERS: MappingProxyType[str, Builder] = MappingProxyType(
    {"AP": ap, "CC": cc, "PRP": prp, "PSI": psi, "MPC": mpc, "SR": sr}
)

import random

import pytest

from training.synthetic.products import (
    BRANDS,
    PRODUCT_TYPES,
    brand_groups,
    different_product,
    sample_product,
    title,
)
from workers.backends.ocr import COLOURS


def test_the_brand_pool_is_large_distinct_and_invented() -> None:
    assert len(BRANDS) >= 24
    assert len({b.lower() for b in BRANDS}) == len(BRANDS)
    assert all(b.isalpha() and 5 <= len(b) <= 10 for b in BRANDS)


def test_brand_groups_are_seeded_and_split_both_ways() -> None:
    groups = brand_groups(0, 0.25)
    assert groups == brand_groups(0, 0.25)
    assert groups != brand_groups(1, 0.25)
    assert set(groups) == set(BRANDS)
    assert sum(g == "test" for g in groups.values()) == round(len(BRANDS) * 0.25)
    with pytest.raises(ValueError):
        brand_groups(0, 1.0)


def test_products_carry_a_colour_name_of_the_ocr_captioner() -> None:
    rng = random.Random(0)
    products = [sample_product(rng, "Alvendra") for _ in range(200)]
    assert {p.colour for p in products} <= set(COLOURS)
    assert {p.product_type.shape for p in products} == {"box", "bottle"}
    assert all(p.gender is None or p.product_type.gendered for p in products)
    assert any(p.gender for p in products) and any(p.expiry for p in products)


def test_a_different_product_differs_in_brand_size_or_type_and_keeps_the_brand_group() -> None:
    rng = random.Random(1)
    group = ["Alvendra", "Brisquo", "Corvella"]
    changed = set()
    for _ in range(200):
        listed = sample_product(rng, "Alvendra")
        other = different_product(rng, listed, group)
        assert other.key() != listed.key()
        assert other.brand in group and other.shape == listed.shape
        if other.brand != listed.brand:
            changed.add("brand")
        elif other.product_type != listed.product_type:
            changed.add("type")
        else:
            changed.add("size")
    assert changed == {"brand", "type", "size"}


def test_titles_name_brand_type_size_and_count() -> None:
    rng = random.Random(2)
    for _ in range(50):
        p = sample_product(rng, "Corvella")
        t = title(p)
        assert t.startswith(f"Corvella {p.product_type.name}") and p.size in t
        assert (f"Pack of {p.count}" in t) == (p.count > 1)
    assert all(t.sizes and t.counts for t in PRODUCT_TYPES)

import random

from training.synthetic.items import (
    CATEGORIES,
    reference_aspects,
    reference_title,
    sample_item,
    seller_aspects,
    seller_title,
)


def test_each_schema_has_4_to_8_distinct_keys_with_some_a_photo_cannot_show() -> None:
    assert len(CATEGORIES) == 4
    for category in CATEGORIES:
        event = category.schema_event()
        names = [a["name"] for a in event["aspects"]]
        assert 4 <= len(names) <= 8 and len(set(names)) == len(names)
        assert all(1 <= len(n) <= 40 for n in names)
        assert any(a["required"] for a in event["aspects"])
        assert any(a["values"] for a in event["aspects"])
        assert any(a.shown is None for a in category.aspects)
        assert all(a.shown is not None for a in category.aspects if a.required)


def test_reference_listings_keep_what_the_photo_shows_and_sellers_say_more() -> None:
    rng = random.Random(0)
    for _ in range(200):
        item = sample_item(rng, "Corvella")
        aspects = reference_aspects(item)
        required = [a.name for a in item.category.aspects if a.required]
        assert set(required) <= set(aspects) == set(item.shown())
        schema_order = [a.name for a in item.category.aspects]
        assert list(aspects) == [n for n in schema_order if n in aspects]
        for a in item.category.aspects:
            assert a.values is None or item.values[a.name] in a.values
        title = reference_title(item)
        assert title.startswith("Corvella ") and title.endswith(aspects["Color"])
        raw, ungrounded = seller_title(item, rng)
        assert ungrounded
        for token in ungrounded:
            assert token in raw and token.lower() not in title.lower()
        said = seller_aspects(item, rng)
        assert aspects.items() <= said.items() and len(said) > len(aspects)

"""OPAL's listing metrics on hand-written answers in the agreed form
``{"title": "...", "aspects": {...}}``: ROUGE-L against a hand count, aspect F1 micro over
the dataset, schema recall against the allowed names."""

from __future__ import annotations

import orjson
import pytest

from schemas.tasks.metrics import (
    FAILED,
    METRICS,
    SCHEMA_METRICS,
    aspect_f1,
    aspects_of,
    listing_scores,
    rouge_l,
    schema_compliance,
)


def listing(title: str, **aspects: str) -> str:
    return orjson.dumps({"title": title, "aspects": aspects}).decode()


SHOES = listing("red nike shoes", Brand="Nike")
# tokens: title red nike shoes aspects brand nike (7)
GUESS = listing("nike running shoes", Brand="Nike", Color="Red")
# tokens: title nike running shoes aspects brand nike color red (9)


def test_rouge_l_against_a_hand_count() -> None:
    """LCS = title nike shoes aspects brand nike (6): P 6/9, R 6/7, F1 = 2*6/(9+7)."""
    assert rouge_l([SHOES], [GUESS]) == pytest.approx(12 / 16)


def test_rouge_l_ignores_json_punctuation_and_case() -> None:
    spaced = '{ "title" : "RED Nike shoes" ,\n "aspects" : { "brand" : "nike" } }'
    assert rouge_l([SHOES], [spaced]) == pytest.approx(1.0)
    # the format's words count: a bare title misses "title", "aspects" and the pairs
    bare = "red nike shoes"  # LCS red nike shoes (3) of 7 and 3 tokens
    assert rouge_l([SHOES], [bare]) == pytest.approx(2 * 3 / (7 + 3))


def test_rouge_l_is_a_mean_and_failures_score_zero() -> None:
    gold = [SHOES, SHOES, SHOES]
    assert rouge_l(gold, [SHOES, GUESS, FAILED]) == pytest.approx((1.0 + 0.75 + 0.0) / 3)
    assert rouge_l([], []) == 0.0
    with pytest.raises(ValueError, match="zip"):
        rouge_l(gold, [SHOES])


def test_aspects_of_malformed_answers() -> None:
    assert aspects_of(FAILED) == {}
    assert aspects_of('{"title": "x", "aspects": {"Brand": "Ni') == {}  # cut off
    assert aspects_of('["Brand", "Nike"]') == {}
    assert aspects_of('{"title": "x"}') == {}
    assert aspects_of('{"title": "x", "aspects": "Brand: Nike"}') == {}
    assert aspects_of('{"title": "x", "aspects": {"Size": 42}}') == {"Size": "42"}


def test_aspect_f1_normalises_names_and_values() -> None:
    gold = [listing("t", Brand="Nike", Department="Men")]
    pred = ['{"title": "t", "aspects": {" brand ": "NIKE.", "DEPARTMENT": "men"}}']
    assert aspect_f1(gold, pred) == 1.0
    # a wrong value is a false positive and a false negative: 2*1 / (2*1 + 1 + 1)
    assert aspect_f1(gold, [listing("t", Brand="Nike", Department="Women")]) == 0.5


def test_aspect_f1_is_micro_over_the_dataset() -> None:
    gold = [
        listing("a", Brand="Nike", Color="Red", Size="9"),
        listing("b", Brand="Adidas"),
        listing("c"),
        listing("d", Type="Boot"),
    ]
    pred = [
        listing("a", Brand="Nike", Color="Red", Size="10"),  # tp 2, fp 1, fn 1
        listing("b", Brand="Adidas", Material="Leather"),  # tp 1, fp 1
        listing("c", Color="Black"),  # empty gold: fp 1
        FAILED,  # fn 1
    ]
    tp, fp, fn = 3, 3, 2
    assert aspect_f1(gold, pred) == pytest.approx(2 * tp / (2 * tp + fp + fn))
    # not the mean of the per-example F1s (2/3, 2/3, 0, 0)
    assert aspect_f1(gold, pred) != pytest.approx((2 / 3 + 2 / 3) / 4)


def test_aspect_f1_without_pairs() -> None:
    assert aspect_f1([listing("a")], [listing("a")]) == 0.0
    assert aspect_f1([listing("a", Brand="Nike")], ["not json"]) == 0.0


def test_schema_compliance_pools_predicted_names() -> None:
    allowed = [["Brand", "Color", "Size"], ["Brand", "Type"], ["Brand"]]
    pred = [
        '{"title": "a", "aspects": {"brand": "Nike", "Colour": "Red", "SIZE ": "9"}}',  # 2 of 3
        listing("b", Type="Boot", Heel="Flat"),  # 1 of 2
        FAILED,  # names nothing
    ]
    assert schema_compliance(pred, allowed) == pytest.approx(3 / 5)
    assert schema_compliance([listing("a"), FAILED], [["Brand"], ["Brand"]]) == 0.0
    assert schema_compliance([listing("a", Brand="Nike")], [["Brand"]]) == 1.0


def test_listing_scores_and_the_registries() -> None:
    gold = [SHOES, listing("blue dress", Color="Blue")]
    pred = [GUESS, '{"title": "blue dress", "aspects": {"Colour": "blue"}}']
    allowed = [["Brand", "Color"], ["Color", "Size"]]
    scores = listing_scores(gold, pred, allowed)
    assert scores == {
        "rouge_l": METRICS["rouge_l"](gold, pred),
        "aspect_f1": METRICS["aspect_f1"](gold, pred),
        "schema_recall": SCHEMA_METRICS["schema_recall"](pred, allowed),
    }
    # pairs: tp 1 (brand nike), fp 2 (color red, colour blue), fn 1 (color blue)
    assert scores["aspect_f1"] == pytest.approx(2 / (2 + 3))
    assert scores["schema_recall"] == pytest.approx(2 / 3)  # brand, color; not colour
    assert 0.0 < scores["rouge_l"] < 1.0

"""MACE-style conformity: title tokens and aspect pairs the photos' evidence cannot support
are dropped, each with its reason."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from training.refine import (
    CategoryRules,
    DroppedPair,
    DroppedToken,
    Evidence,
    EvidenceIndex,
    Listing,
    colour_inferable,
    refine_listing,
    refine_title,
    summarise,
    within_one_edit,
)

SHOES = CategoryRules(
    vocabulary=frozenset({"Sneakers", "Shoes", "Women's"}),
    required=frozenset({"Brand", "US Shoe Size"}),
)
EVIDENCE = Evidence(
    ocr_tokens=["NIKE", "AIR", "MAX", "90", "SNEAKRS"],
    captions=["A grey and white sneaker on a wooden floor."],
)


def _title(title: str, evidence: Evidence = EVIDENCE) -> tuple[str, list[DroppedToken]]:
    return refine_title(title, EvidenceIndex(evidence), SHOES)


@pytest.mark.parametrize(
    ("a", "b", "near"),
    [
        ("sneakers", "sneakrs", True),
        ("sneakers", "sneakerz", True),
        ("sneakers", "sneaker", True),
        ("same", "same", True),
        ("sneakers", "snakerz", False),
        ("abc", "abcde", False),
        ("cw2288", "cw2298", True),
    ],
)
def test_within_one_edit(a: str, b: str, near: bool) -> None:
    assert within_one_edit(a, b) is near
    assert within_one_edit(b, a) is near


def test_title_keeps_the_grounded_and_generic_words_and_says_why_the_rest_went() -> None:
    title, dropped = _title("NIKE Air Max 90 Women's Sneakers Sz 8 SHIP FAST L@@K !!! Vintage")
    assert title == "NIKE Air Max 90 Women's Sneakers"
    assert dropped == [
        DroppedToken("Sz", 6, "size_or_code"),
        DroppedToken("8", 7, "size_or_code"),
        DroppedToken("SHIP", 8, "marketing"),
        DroppedToken("FAST", 9, "marketing"),
        DroppedToken("L@@K", 10, "noise"),
        DroppedToken("!!!", 11, "noise"),
        DroppedToken("Vintage", 12, "ungrounded"),
    ]


def test_fuzzy_matching_is_for_long_words_only_and_never_for_codes() -> None:
    evidence = EvidenceIndex(Evidence(ocr_tokens=["NLKE", "SNEAKERZ", "CW2289", "RUNING"]))
    title, dropped = refine_title("Nike Sneakers CW2288 Running", evidence, CategoryRules())
    assert title == "Sneakers Running"
    assert [(d.token, d.reason) for d in dropped] == [
        ("Nike", "ungrounded"),
        ("CW2288", "size_or_code"),
    ]


def test_evidence_that_shows_a_word_keeps_it_even_if_it_looks_like_marketing() -> None:
    title, dropped = _title("Fast Charger Sz", Evidence(ocr_tokens=["FAST", "CHARGER", "SZ"]))
    assert (title, dropped) == ("Fast Charger Sz", [])


def test_compounds_need_each_part_and_emphasis_marks_go() -> None:
    title, dropped = _title("NIKE!!! Grey/White Red/White")
    assert title == "NIKE Grey/White"
    assert dropped == [DroppedToken("Red/White", 2, "ungrounded")]


def test_separators_and_connectors_left_dangling_are_dropped() -> None:
    title, dropped = _title("- NIKE - Sz 9 - | Air with")
    assert title == "NIKE - Air"
    assert [(d.position, d.reason) for d in dropped] == [
        (0, "dangling"),
        (3, "size_or_code"),
        (4, "size_or_code"),
        (5, "dangling"),
        (6, "dangling"),
        (8, "dangling"),
    ]


def test_aspects_keep_supported_and_inferable_pairs_and_record_required_drops() -> None:
    listing = Listing(
        title="NIKE Air Max 90 Sz 8",
        aspects={
            "Brand": "Nike",
            "Color": "Gray",
            "US Shoe Size": "8",
            "Style Code": "CW2288-111",
            "Department": "N/A",
            "Type": "Sneakers",
        },
    )
    result = refine_listing(listing, EVIDENCE, SHOES)
    assert result.refined == Listing(
        title="NIKE Air Max 90",
        aspects={"Brand": "Nike", "Color": "Gray", "Type": "Sneakers"},
    )
    assert result.dropped_pairs == (
        DroppedPair("US Shoe Size", "8", "ungrounded", required=True),
        DroppedPair("Style Code", "CW2288-111", "ungrounded", required=False),
        DroppedPair("Department", "N/A", "unanswerable", required=False),
    )
    assert result.missing_required == ("US Shoe Size",)
    assert result.changed and result.usable


@pytest.mark.parametrize(
    ("value", "captions", "inferable"),
    [
        ("Gray", ["a grey boot"], True),
        ("Triple White", ["white sneaker"], True),
        ("Black/White", ["Dominant colours: white, black."], True),
        ("Red", ["a blue sneaker"], False),
        ("Multicolor", ["red and blue stripes"], True),
        ("Multi-Color", ["a red boot"], False),
        ("Floral", ["a red boot"], False),
    ],
)
def test_colour_rule(value: str, captions: list[str], inferable: bool) -> None:
    assert colour_inferable(value, EvidenceIndex(Evidence(captions=captions))) is inferable


def test_a_key_the_schema_lacks_is_not_inferable() -> None:
    @dataclass
    class Spec:
        name: str
        required: bool = False

    rules = CategoryRules.from_schema([Spec("Brand", required=True), Spec("Colour")])
    assert rules.required == {"Brand"}
    assert dict(rules.inferable) == {}
    listing = Listing(title="NIKE", aspects={"Brand": "Adidas", "Colour": "Grey/White"})
    result = refine_listing(listing, EVIDENCE, rules)
    assert result.refined.aspects == {"Colour": "Grey/White"}  # its words are in the caption
    assert result.missing_required == ("Brand",)
    red = refine_listing(Listing("NIKE", {"Colour": "Red"}), EVIDENCE, rules)
    assert red.dropped_pairs == (DroppedPair("Colour", "Red", "ungrounded", required=False),)


class _Rewriter:
    def __init__(self) -> None:
        self.seen: list[tuple[Listing, Evidence]] = []

    def rewrite(self, listing: Listing, evidence: Evidence) -> Listing:
        self.seen.append((listing, evidence))
        return Listing(title="NIKE Max Glitter", aspects={"Brand": "Nike"})


def test_a_rewriter_goes_first_and_its_output_is_checked() -> None:
    listing = Listing(title="NIKE Air Max", aspects={"Brand": "Nike", "Color": "Grey"})
    rewriter = _Rewriter()
    result = refine_listing(listing, EVIDENCE, SHOES, rewriter=rewriter)
    assert rewriter.seen == [(listing, EVIDENCE)]
    assert result.refined == Listing(title="NIKE Max", aspects={"Brand": "Nike"})
    assert result.dropped_tokens == (
        DroppedToken("Air", 1, "rewriter"),
        DroppedToken("Glitter", 2, "ungrounded"),
    )
    assert result.dropped_pairs == (DroppedPair("Color", "Grey", "rewriter", required=False),)


def test_listing_json_round_trip_keeps_the_order() -> None:
    text = '{"title":"NIKE Air","aspects":{"Type":"Sneakers","Brand":"Nike"}}'
    listing = Listing.from_json(text)
    assert listing.to_json() == text
    for bad in ('{"aspects":{}}', '{"title":"x","aspects":{"A":1}}', "[]"):
        with pytest.raises(ValueError):
            Listing.from_json(bad)


def test_summary_counts_reasons_over_a_data_set() -> None:
    results = [
        refine_listing(Listing("NIKE Sz 8 SHIP", {"Brand": "Nike", "Size": "8"}), EVIDENCE, SHOES),
        refine_listing(Listing("NIKE Air", {"Brand": "Nike"}), EVIDENCE, SHOES),
        refine_listing(Listing("Vintage !!!", {}), EVIDENCE, SHOES),
    ]
    summary = summarise(results).as_dict()
    assert summary == {
        "examples": 3,
        "changed": 2,
        "unusable": 1,
        "title_tokens": 8,
        "aspect_pairs": 3,
        "dropped_tokens": {"size_or_code": 2, "marketing": 1, "ungrounded": 1, "noise": 1},
        "dropped_pairs": {"ungrounded": 1},
        "lost_required": 0,
    }

"""MACE-style conformity: title tokens and aspect pairs the photos' evidence cannot support
are dropped, each with its reason."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import orjson
import pytest

from schemas.events import AspectSchemaEvent, ListingEvent, parse_query
from schemas.tasks import get_task
from schemas.tasks.resolving import MemoryTables
from training.dataset import InstructionExample
from training.refine import (
    CategoryRules,
    DroppedPair,
    DroppedToken,
    Evidence,
    EvidenceIndex,
    Listing,
    category_vocabulary,
    colour_inferable,
    example_evidence,
    example_rules,
    refine_example,
    refine_examples,
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


# -- LG instruction examples ---------------------------------------------------------------

LG = get_task("LG")
LG_SCHEMA = AspectSchemaEvent(
    category="womens-shoes",
    aspects=[
        {"name": "Brand", "required": True},
        {"name": "Color", "required": True, "values": ["Black", "White", "Grey"]},
        {"name": "Type", "values": ["Pumps", "Sneakers"]},
        {"name": "US Shoe Size", "values": ["8", "9", "S"]},
        {"name": "Country of Manufacture"},
    ],
)


def _lg_example(
    output: Mapping[str, object],
    kept: dict[str, str],
    ocr: dict[str, str],
    split: str = "train",
    seller_text: str | None = "Made in China, size 8, ships fast",
) -> InstructionExample:
    """An LG example as the training data builds it: the request resolved, the sample
    assembled by the LG task (captions kept per slot, OCR per slot), the gold output."""
    images = [{"url": "https://cdn.example/a.jpg"}, {"url": "https://cdn.example/b.jpg"}]
    listing = ListingEvent(
        listing_id="l1", category="womens-shoes", images=images, seller_text=seller_text
    )
    query = parse_query({"request_id": "q1", "task": "LG", "listing_id": "l1"})
    tables = MemoryTables(listings={"l1": listing}, aspect_schemas={"womens-shoes": LG_SCHEMA})
    request = LG.resolve(query, tables)
    sample = LG.assemble(request, kept, ocr)
    return InstructionExample(
        task="LG",
        split=split,
        instruction=sample.instruction,
        input=sample.input_text(),
        options=sample.options,
        output=orjson.dumps(output).decode(),
    )


PUMPS = _lg_example(
    {
        "title": "NINE WEST Women's Black Leather Pumps Sz 8 SHIP FAST",
        "aspects": {
            "Brand": "Nine West",
            "Color": "Black",
            "Type": "Pumps",
            "US Shoe Size": "8",
            "Country of Manufacture": "China",
        },
    },
    kept={"listing/1": "black leather pumps on a white floor"},
    ocr={"listing/0": "NINE WEST"},
)


def test_an_example_keeps_what_its_own_input_shows_and_says_why_the_rest_went() -> None:
    result = refine_example(PUMPS)
    assert result.refined == Listing(
        "NINE WEST Women's Black Leather Pumps",
        {"Brand": "Nine West", "Color": "Black", "Type": "Pumps"},
    )
    assert [(d.token, d.reason) for d in result.dropped_tokens] == [
        ("Sz", "size_or_code"),
        ("8", "size_or_code"),
        ("SHIP", "marketing"),
        ("FAST", "marketing"),
    ]
    # the seller's text says "Made in China, size 8": it is not evidence
    assert result.dropped_pairs == (
        DroppedPair("US Shoe Size", "8", "ungrounded", required=False),
        DroppedPair("Country of Manufacture", "China", "ungrounded", required=False),
    )


def test_the_evidence_is_the_ocr_and_the_kept_captions_unnumbered() -> None:
    evidence = example_evidence(PUMPS.sample())
    assert list(evidence.ocr_tokens) == ["NINE WEST"]  # the second image's "none" is no text
    assert list(evidence.captions) == ["black leather pumps on a white floor"]
    bare = _lg_example({"title": "x", "aspects": {}}, kept={}, ocr={})
    assert example_evidence(bare.sample()) == Evidence()


def test_the_vocabulary_is_the_category_and_the_listed_values_less_sizes_and_codes() -> None:
    vocabulary = category_vocabulary("womens-shoes", LG_SCHEMA.aspects)
    assert {"womens", "women", "shoes", "shoe", "pumps", "sneakers", "black", "grey"} <= vocabulary
    assert not {"8", "9", "s", "brand", "china"} & vocabulary
    rules = example_rules(PUMPS.sample())
    assert rules.required == {"Brand", "Color"} and rules.vocabulary == vocabulary


def test_refined_examples_are_written_back_and_the_unusable_ones_counted_out() -> None:
    hype = _lg_example(
        {"title": "SHIP FAST L@@K", "aspects": {"Brand": "Acme"}},
        kept={},
        ocr={"listing/0": "NINE WEST"},
    )
    other = InstructionExample(
        task="SA", split="train", instruction="i", input="{}", options=[], output="A: good"
    )
    examples, summary = refine_examples([other, PUMPS, hype])
    assert examples == [other, replace(PUMPS, output=examples[1].output)]
    assert orjson.loads(examples[1].output) == {
        "title": "NINE WEST Women's Black Leather Pumps",
        "aspects": {"Brand": "Nine West", "Color": "Black", "Type": "Pumps"},
    }
    assert summary.as_dict() == {
        "examples": 2,  # the LG ones
        "changed": 2,
        "unusable": 1,
        "title_tokens": 10 + 3,
        "aspect_pairs": 5 + 1,
        "dropped_tokens": {"size_or_code": 2, "marketing": 4, "noise": 1},
        "dropped_pairs": {"ungrounded": 3},
        "lost_required": 1,  # Acme, the hype listing's Brand
    }


def test_a_grounded_example_is_left_as_it_is() -> None:
    gold = {"title": "NINE WEST Black Pumps", "aspects": {"Brand": "Nine West", "Color": "Black"}}
    example = _lg_example(gold, kept={"listing/1": "black pumps"}, ocr={"listing/0": "NINE WEST"})
    [same], summary = refine_examples([example])
    assert same == example and summary.changed == 0 and summary.unusable == 0


def test_refining_another_task_is_refused() -> None:
    other = InstructionExample(
        task="SA", split="train", instruction="i", input="{}", options=[], output="A: good"
    )
    with pytest.raises(ValueError, match="refinement is for LG examples, not SA"):
        refine_example(other)

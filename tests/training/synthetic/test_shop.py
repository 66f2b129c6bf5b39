"""The synthetic shop: seeded, valid events, balanced classes, labels that follow the stated
rules (re-derived here from titles, reviews and options), and splits by brand."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.events import ProductEvent, ReviewEvent, parse_query
from schemas.records import LabelEvent
from training.synthetic.products import brand_groups
from training.synthetic.shop import ShopSet, generate_shop
from training.synthetic.shop_catalog import COMPLEMENT, TYPES
from training.synthetic.shop_tasks import CLASSES, RULES

#: A question's word -> the word a review that answers it carries (read off the questions).
ANSWERED_BY = {
    "colour": "colour",
    "material": "material",
    "size": "size",
    "weigh": "weigh",
    "clean": "clean",
    "warranty": "warranty",
}
TYPE_NAMES = sorted((t.name.lower() for t in TYPES), key=len, reverse=True)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> ShopSet:
    made = generate_shop(tmp_path_factory.mktemp("shop") / "shop", 120, seed=3)
    made.write()
    return made


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9.]+", text.lower()))


def type_in(text: str) -> str:
    """The (longest) product type named in a title or search query."""
    found = [name for name in TYPE_NAMES if re.search(rf"\b{re.escape(name)}\b", text.lower())]
    assert found, text
    return found[0]


def complement(kind: str) -> str:
    return {a.lower(): b.lower() for a, b in COMPLEMENT.items()}[kind]


def category(kind: str) -> str:
    return next(t.category for t in TYPES if t.name.lower() == kind)


def esci(query: str, title: str) -> str:
    """ESCI class of a product title for a search query, by the stated rule."""
    asked, kind = type_in(query), type_in(title)
    if asked == kind:
        return "E" if words(query) <= words(title) else "S"
    if complement(asked) == kind:
        return "C"
    assert category(asked) != category(kind), (query, title)
    return "I"


def rows(shop: ShopSet, task: str) -> list[tuple[dict[str, Any], str]]:
    label = {x["request_id"]: x["label"] for x in shop.labels}
    return [(q, label[q["request_id"]]) for q in shop.queries if q["task"] == task]


def test_the_same_seed_gives_the_same_shop_and_another_seed_another(tmp_path: Path) -> None:
    a = generate_shop(tmp_path / "a", 20, seed=5)
    b = generate_shop(tmp_path / "b", 20, seed=5)
    c = generate_shop(tmp_path / "c", 20, seed=6)
    for field in ("catalog", "reviews", "queries", "labels", "splits", "brands"):
        assert getattr(a, field) == getattr(b, field)
    assert a.queries != c.queries and a.catalog != c.catalog


def test_every_written_line_validates(shop: ShopSet) -> None:
    folder = shop.folder

    def lines(name: str) -> list[Any]:
        return [orjson.loads(line) for line in (folder / name).read_bytes().splitlines()]

    products = [ProductEvent.model_validate(x) for x in lines("catalog.jsonl")]
    reviews = [ReviewEvent.model_validate(x) for x in lines("reviews.jsonl")]
    queries = [parse_query(x) for x in lines("queries.jsonl")]
    labels = [LabelEvent.model_validate(x) for x in lines("labels.jsonl")]
    assert len(queries) == len(labels) == 6 * 120
    assert {r.product_id for r in reviews} == {p.product_id for p in products}
    assert all(not p.images for p in products)
    assert {q.request_id for q in queries} == {x.request_id for x in labels}
    assert all(re.fullmatch(rf"shop-{q.task.lower()}-\d+", q.request_id) for q in queries)
    splits = orjson.loads((folder / "splits.json").read_bytes())
    assert {x.request_id: x.split for x in labels} == splits
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    assert manifest["seed"] == 3 and set(manifest["rules"]) == set(RULES)
    assert {t: m["total"] for t, m in manifest["tasks"].items()} == dict.fromkeys(CLASSES, 120)


def test_each_split_of_each_task_is_balanced(shop: ShopSet) -> None:
    for task, classes in CLASSES.items():
        for split in ("train", "val", "test"):
            counts = Counter(
                label for q, label in rows(shop, task) if shop.splits[q["request_id"]] == split
            )
            assert set(counts) == set(classes), (task, split)
            assert max(counts.values()) - min(counts.values()) <= 1, (task, split, counts)


def test_ap_is_yes_iff_a_review_answers_the_question(shop: ShopSet) -> None:
    reviews: dict[str, list[str]] = {}
    for review in shop.reviews:
        reviews.setdefault(review["product_id"], []).append(review["text"].lower())
    for query, label in rows(shop, "AP"):
        asked = [a for q, a in ANSWERED_BY.items() if q in query["question"].lower()]
        assert len(asked) == 1, query
        answered = any(asked[0] in text for text in reviews[query["product_id"]])
        assert label == ("yes" if answered else "no"), query


def test_mpc_and_psi_follow_the_esci_rule(shop: ShopSet) -> None:
    title = {p["product_id"]: p["title"] for p in shop.catalog}
    letter = {"E": "A", "S": "B", "C": "C", "I": "D"}
    for query, label in rows(shop, "MPC"):
        assert letter[esci(query["query"], title[query["product_id"]])] == label, query
    no: Counter[str] = Counter()
    for query, label in rows(shop, "PSI"):
        found = esci(query["query"], title[query["product_id"]])
        assert label == ("yes" if found == "S" else "no"), query
        no[found] += label == "no"
    assert no["E"] and no["C"] and no["I"], "PSI's no mixes exact, complement and irrelevant"


def test_prp_follows_its_relation_rule(shop: ShopSet) -> None:
    title = {p["product_id"]: p["title"] for p in shop.catalog}
    for query, label in rows(shop, "PRP"):
        one, two = type_in(title[query["product_id"]]), type_in(title[query["other_product_id"]])
        if one == two:
            assert label == "C"
        elif complement(one) == two:
            assert label == "A"
        else:
            assert category(one) == category(two) and label == "B", query


def test_cc_options_hold_the_products_category_and_other_categories(shop: ShopSet) -> None:
    category_of = {p["product_id"]: p["category"] for p in shop.catalog}
    for query, label in rows(shop, "CC"):
        options, gold = query["options"], category_of[query["product_id"]]
        assert options[ord(label) - ord("A")] == gold and options.count(gold) == 1
        top = gold.split(" > ")[0]
        assert all(o.split(" > ")[0] != top for o in options if o != gold)


def test_sr_next_item_is_the_only_candidate_that_fits_the_pattern(shop: ShopSet) -> None:
    product = {p["product_id"]: p for p in shop.catalog}
    patterns: Counter[str] = Counter()
    for query, label in rows(shop, "SR"):
        history = [product[pid] for pid in query["history_product_ids"]]
        candidates = [product[pid] for pid in query["candidate_product_ids"]]
        assert len(candidates) == 5 and 3 <= len(history) <= 5
        brands = {h["brand"] for h in history}
        if len(brands) == 1:
            fits = [i for i, c in enumerate(candidates) if c["brand"] in brands]
            patterns["brand"] += 1
        else:
            kinds = [type_in(h["title"]) for h in history]
            pairs = list(zip(kinds[0:-1:2], kinds[1:-1:2], strict=True))
            assert all(complement(a) == b for a, b in pairs), kinds
            wanted = complement(kinds[-1])
            fits = [i for i, c in enumerate(candidates) if type_in(c["title"]) == wanted]
            patterns["chain"] += 1
        assert fits == [ord(label) - ord("A")], query
    assert patterns["brand"] > 10 and patterns["chain"] > 10


def test_test_queries_name_only_held_out_brands_and_val_its_own(shop: ShopSet) -> None:
    brand = {p["product_id"]: p["brand"] for p in shop.catalog}
    groups = brand_groups(3, 0.25)
    assert {b for b, s in shop.brands.items() if s == "test"} == {
        b for b, g in groups.items() if g == "test"
    }
    assert 1 <= sum(s == "val" for s in shop.brands.values()) < len(groups) * 0.25
    for query in shop.queries:
        ids = [v for k, v in query.items() if k.endswith("product_id")]
        ids += query.get("history_product_ids", []) + query.get("candidate_product_ids", [])
        split = shop.splits[query["request_id"]]
        assert ids and {shop.brands[brand[pid]] for pid in ids} == {split}, query
    for task in CLASSES:
        counts = Counter(shop.splits[q["request_id"]] for q, _ in rows(shop, task))
        assert counts["test"] == 30 and counts["val"] == 9, (task, counts)


def test_a_bad_request_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        generate_shop(tmp_path, 0)
    with pytest.raises(ValueError, match="no shop builder"):
        generate_shop(tmp_path, 4, tasks=("SA",))

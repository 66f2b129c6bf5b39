import hashlib
from collections import Counter
from pathlib import Path

import orjson
import pytest
from PIL import Image

from schemas.events import ProductEvent
from schemas.records import LabelEvent
from tests.training.synthetic.conftest import image_path
from training.synthetic import DEFAULT_KEYS, UNANSWERABLE, SyntheticSet, generate


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "images").iterdir())}


def _events(s: SyntheticSet) -> bytes:
    blob = orjson.dumps([s.catalog, s.claims, s.queries, s.labels, s.splits])
    return blob.replace(s.folder.resolve().as_uri().encode(), b"ROOT")


def test_the_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", 6, seed=3)
    b = generate(tmp_path / "b", 6, seed=3)
    c = generate(tmp_path / "c", 6, seed=4)
    assert _files(a.folder) == _files(b.folder)
    assert _events(a) == _events(b)
    a.write()
    b.write()
    for name in ("queries.jsonl", "labels.jsonl", "splits.json", "truth.jsonl"):
        assert (a.folder / name).read_bytes() == (b.folder / name).read_bytes()
    assert _files(a.folder) != _files(c.folder)
    assert _events(a) != _events(c)


def test_dd_and_pm_labels_are_balanced_within_each_split(small_set: SyntheticSet) -> None:
    for split in ("train", "test"):
        counts = Counter(
            (e["task"], e["label"])
            for e in small_set.labels
            if small_set.splits[e["request_id"]] == split and e["task"] in ("DD", "PM")
        )
        assert counts[("DD", "yes")] > 0 and counts[("PM", "yes")] > 0
        assert abs(counts[("DD", "yes")] - counts[("DD", "no")]) <= 1
        assert abs(counts[("PM", "yes")] - counts[("PM", "no")]) <= 1
    truth = {t["claim_id"]: t for t in small_set.truth}
    for e in small_set.labels:
        facts = truth[e["request_id"].split("-", 2)[2]]
        if e["task"] == "DD":
            assert (e["label"] == "yes") == bool(facts["damage"])
        if e["task"] == "PM":
            assert (e["label"] == "yes") == facts["matched"] == (not facts["differs"])


def test_no_test_brand_appears_in_training(small_set: SyntheticSet) -> None:
    groups = small_set.brands
    assert set(groups.values()) == {"train", "test"}
    splits_seen = set()
    for facts in small_set.truth:
        split = facts["split"]
        splits_seen.add(split)
        assert groups[facts["listed"]["brand"]] == split
        assert groups[facts["delivered"]["brand"]] == split
        for task in ("dd", "pm", "ae"):
            assert small_set.splits[f"syn-{task}-{facts['claim_id']}"] == split
    assert splits_seen == {"train", "test"}
    train_brands = {f["delivered"]["brand"] for f in small_set.truth if f["split"] == "train"}
    assert not train_brands & {b for b, g in groups.items() if g == "test"}
    listing_brand = {p["product_id"]: p["brand"] for p in small_set.catalog}
    for claim, facts in zip(small_set.claims, small_set.truth, strict=True):
        assert groups[listing_brand[claim["product_id"]]] == facts["split"]


def test_ae_labels_use_unanswerable_for_what_the_photos_do_not_show(
    small_set: SyntheticSet,
) -> None:
    truth = {t["claim_id"]: t for t in small_set.truth}
    seen: Counter[tuple[str, bool]] = Counter()
    for e in small_set.labels:
        if e["task"] != "AE":
            continue
        assert e["label"] == orjson.dumps(orjson.loads(e["label"])).decode()  # compact JSON
        values = orjson.loads(e["label"])
        assert list(values) == list(DEFAULT_KEYS)
        facts = truth[e["request_id"].removeprefix("syn-ae-")]
        delivered, shown = facts["delivered"], set(facts["shown"])
        assert values["Color"] == delivered["colour"]
        assert (values["Brand"] == delivered["brand"]) == ("brand" in shown)
        assert (values["Size"] == delivered["size"]) == ("size" in shown)
        if delivered["gender"] is None:
            assert values["TargetGender"] == UNANSWERABLE
        if delivered["count"] == 1:
            assert values["Count"] == UNANSWERABLE
        for key, value in values.items():
            seen[(key, value == UNANSWERABLE)] += 1
    assert seen[("Color", True)] == 0
    for key in ("Count", "TargetGender", "ExpiryDate"):
        assert seen[(key, True)] > 0 and seen[(key, False)] > 0


def test_ae_keys_are_a_parameter(tmp_path: Path) -> None:
    s = generate(tmp_path / "k", 4, seed=1, keys=["Brand", "Color"])
    for e in s.labels:
        if e["task"] == "AE":
            assert list(orjson.loads(e["label"])) == ["Brand", "Color"]
    for bad in ([], ["Brand", "Brand"], ["Flavour"]):
        with pytest.raises(ValueError):
            generate(tmp_path / "bad", 2, keys=bad)


def test_events_have_the_topic_shapes(small_set: SyntheticSet) -> None:
    for product in small_set.catalog:
        ProductEvent.model_validate(product)
        assert product["images"] and product["title"].startswith(product["brand"])
    for e in small_set.labels:
        # LabelEvent's task codes do not list DD/PM/AE yet: check the fields it has
        assert set(e) <= set(LabelEvent.model_fields)
        assert e["label"] in ("yes", "no") or e["task"] == "AE"
    claim_ids = [c["claim_id"] for c in small_set.claims]
    assert len(set(claim_ids)) == len(claim_ids) == 48
    products = {p["product_id"] for p in small_set.catalog}
    for claim in small_set.claims:
        assert set(claim) == {"claim_id", "product_id", "text", "images", "order_id", "event_time"}
        assert claim["product_id"] in products and 1 <= len(claim["images"]) <= 8
        assert 0 < len(claim["text"]) <= 600
    assert {(q["task"], q["request_id"]) for q in small_set.queries} == {
        (t, f"syn-{t.lower()}-{c}") for c in claim_ids for t in ("DD", "PM", "AE")
    }
    assert set(small_set.splits) == {q["request_id"] for q in small_set.queries}
    assert {(e["request_id"], e["task"]) for e in small_set.labels} == {
        (q["request_id"], q["task"]) for q in small_set.queries
    }


def test_images_are_small_pngs_named_by_file_uri_with_their_digest(
    small_set: SyntheticSet,
) -> None:
    refs = [r for p in small_set.catalog for r in p["images"]]
    refs += [r for c in small_set.claims for r in c["images"]]
    for ref in refs:
        path = image_path(ref["url"])
        assert path.is_relative_to(small_set.folder.resolve())
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == ref["sha256"]
        assert len(data) < 120_000
        with Image.open(path) as img:
            assert img.format == "PNG" and img.size == (480, 480)


def test_a_matching_delivery_is_redrawn_not_the_catalog_image(small_set: SyntheticSet) -> None:
    catalog = {p["product_id"]: p["images"][0]["sha256"] for p in small_set.catalog}
    matched = [c for c, t in zip(small_set.claims, small_set.truth, strict=True) if t["matched"]]
    assert matched
    for claim in matched:
        assert all(r["sha256"] != catalog[claim["product_id"]] for r in claim["images"])


def test_write_puts_every_file_in_the_folder(small_set: SyntheticSet) -> None:
    written = {p.name for p in small_set.write()}
    assert {"catalog.jsonl", "claims.jsonl", "queries.jsonl", "labels.jsonl"} <= written
    assert {"splits.json", "truth.jsonl", "manifest.json"} <= written
    lines = (small_set.folder / "claims.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == small_set.claims
    assert orjson.loads((small_set.folder / "splits.json").read_bytes()) == small_set.splits

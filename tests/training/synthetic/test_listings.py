import hashlib
import shutil
from collections import Counter
from pathlib import Path

import orjson
import pytest
from PIL import Image

from tests.training.synthetic.conftest import image_path
from training.synthetic.items import CATEGORY_BY_NAME
from training.synthetic.listings import ListingSet, generate_listings
from training.synthetic.products import BRANDS
from training.synthetic.readback import listing_readback

TESSERACT = shutil.which("tesseract")


@pytest.fixture(scope="module")
def listings(tmp_path_factory: pytest.TempPathFactory) -> ListingSet:
    return generate_listings(tmp_path_factory.mktemp("lg") / "set", 40, seed=3)


def _blob(s: ListingSet) -> bytes:
    blob = orjson.dumps([s.schemas, s.listings, s.references, s.queries, s.labels, s.splits])
    return blob.replace(s.folder.resolve().as_uri().encode(), b"ROOT")


def _images(s: ListingSet) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((s.folder / "images").iterdir())}


def test_the_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    a, b = (generate_listings(tmp_path / n, 5, seed=1) for n in ("a", "b"))
    c = generate_listings(tmp_path / "c", 5, seed=2)
    assert _blob(a) == _blob(b) and _images(a) == _images(b)
    assert _blob(a) != _blob(c) and _images(a) != _images(c)


def test_events_have_the_agreed_shapes(listings: ListingSet) -> None:
    assert [s["category"] for s in listings.schemas] == list(CATEGORY_BY_NAME)
    for schema in listings.schemas:
        assert set(schema) == {"category", "aspects", "event_time"}
        for spec in schema["aspects"]:
            assert set(spec) == {"name", "required", "values"}
    for e in listings.listings:
        assert set(e) == {"listing_id", "category", "images", "seller_text", "event_time"}
        assert e["category"] in CATEGORY_BY_NAME and 1 <= len(e["images"]) <= 8
        assert e["seller_text"] is None or 0 < len(e["seller_text"]) <= 2000
        for ref in e["images"]:
            data = image_path(ref["url"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == ref["sha256"]
            with Image.open(image_path(ref["url"])) as img:
                assert img.format == "PNG" and img.size == (480, 480)
    ids = [e["listing_id"] for e in listings.listings]
    assert len(set(ids)) == 40
    assert [q["request_id"] for q in listings.queries] == [f"auto-lg:{i}" for i in ids]
    assert [q["listing_id"] for q in listings.queries] == ids
    assert [e["request_id"] for e in listings.labels] == [q["request_id"] for q in listings.queries]
    assert {e["task"] for e in listings.labels} == {"LG"}
    assert set(listings.splits) == {q["request_id"] for q in listings.queries}
    assert Counter(e["category"] for e in listings.listings) == {c: 10 for c in CATEGORY_BY_NAME}


def test_labels_are_the_compact_reference_json_in_schema_order(listings: ListingSet) -> None:
    for label, ref in zip(listings.labels, listings.references, strict=True):
        answer = orjson.loads(label["label"])
        assert label["label"] == ref["answer"] == orjson.dumps(answer).decode()
        assert list(answer) == ["title", "aspects"]
        assert answer == {"title": ref["title"], "aspects": ref["aspects"]}
        schema = [a.name for a in CATEGORY_BY_NAME[ref["category"]].aspects]
        assert list(answer["aspects"]) == [n for n in schema if n in ref["shown"]]
        assert answer["aspects"] == {n: ref["values"][n] for n in ref["shown"]}


def test_seller_listings_carry_what_refinement_should_drop(listings: ListingSet) -> None:
    dropped = Counter[str]()
    for ref in listings.references:
        assert ref["ungrounded"]
        for token in ref["ungrounded"]:
            assert token in ref["raw_title"] and token.lower() not in ref["title"].lower()
        raw = ref["raw_aspects"]
        assert ref["aspects"].items() <= raw.items()
        dropped.update(k for k in raw if k not in ref["aspects"])
        assert orjson.loads(ref["raw_answer"]) == {"title": ref["raw_title"], "aspects": raw}
    assert dropped["Country of Manufacture"] == 40 and dropped["Model Year"] > 0
    assert sum(n for k, n in dropped.items() if k in ("Condition", "Shipping", "Bundle")) > 0


def test_splits_hold_out_test_brands_and_val_is_from_training_brands(
    listings: ListingSet,
) -> None:
    brand_split = listings.brands
    assert set(brand_split) == set(BRANDS)
    seen = Counter[str]()
    for ref, query in zip(listings.references, listings.queries, strict=True):
        split = listings.splits[query["request_id"]]
        assert split == ref["split"]
        seen[split] += 1
        assert brand_split[ref["values"]["Brand"]] == ("test" if split == "test" else "train")
    assert seen == {"train": 27, "val": 3, "test": 10}


def test_write_puts_every_file_in_the_folder(listings: ListingSet) -> None:
    written = {p.name for p in listings.write()}
    assert written == {
        "listings.jsonl",
        "references.jsonl",
        "queries.jsonl",
        "labels.jsonl",
        "aspect_schemas.json",
        "splits.json",
        "manifest.json",
    }
    rows = (listings.folder / "listings.jsonl").read_bytes().splitlines()
    assert [orjson.loads(r) for r in rows] == listings.listings
    assert orjson.loads((listings.folder / "aspect_schemas.json").read_bytes()) == listings.schemas


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_listings(tmp_path, 0)
    with pytest.raises(ValueError):
        generate_listings(tmp_path, 4, val_fraction=1.0)


@pytest.mark.skipif(TESSERACT is None, reason="tesseract-ocr not installed")
def test_tesseract_reads_most_brands_and_printed_aspects_back(tmp_path: Path) -> None:
    assert TESSERACT is not None
    s = generate_listings(tmp_path / "ocr", 12, seed=11, more_photos=0.0)
    rate = listing_readback(s.listings, s.references, TESSERACT)
    assert rate.photos == rate.printed["Brand"] == 12
    assert rate.rate("Brand") >= 0.7, rate.summary()
    assert rate.rate("Material") >= 0.7, rate.summary()

"""``caslie prepare``: synthetic labelled claims through the real captioner (Tesseract) and
voter stages into enriched records and split-pinned labels that training assembles."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from caslie.prepare import pinned_labels, prepare, read_prepared, split_of
from schemas.events import AspectSchemaEvent
from schemas.records import EnrichedRecord, LabelEvent
from schemas.tasks import get_task
from schemas.tasks.lg import listing_json_schema
from streams.config import Settings, VoterSettings
from training.dataset import assemble
from training.evaluate import category_of
from training.synthetic import generate
from training.synthetic.listings import generate_listings
from training.synthetic.shop import generate_shop

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract")


def test_held_out_stays_test_and_the_rest_splits_stably() -> None:
    assert split_of("anything", "test", 0.5) == "test"
    ids = [f"r{i}" for i in range(400)]
    val = [i for i in ids if split_of(i, "train", 0.1) == "val"]
    assert 20 <= len(val) <= 60 and val == [i for i in ids if split_of(i, "train", 0.1) == "val"]


def test_labelled_claims_become_training_examples(tmp_path: Path) -> None:
    synthetic = generate(tmp_path / "syn", n_claims=4, seed=1, test_fraction=0.5)
    synthetic.write()
    settings = Settings(cache_dir=Path.home() / ".cache" / "caslie")
    settings = settings.model_copy(update={"voter": VoterSettings(judges=["overlap"])})
    records, labels = prepare(tmp_path / "syn", tmp_path / "out", settings, 0.0)
    assert (records, labels) == (12, 12)  # DD, PM and AE of each claim
    enriched = [
        EnrichedRecord.from_json(line)
        for line in (tmp_path / "out" / "enriched.jsonl").read_bytes().splitlines()
    ]
    events = [
        LabelEvent.from_json(line)
        for line in (tmp_path / "out" / "labels.jsonl").read_bytes().splitlines()
    ]
    photo = next(c for r in enriched if r.task == "AE" for c in r.captions)
    assert photo.ocr_tokens, "the claim tasks get the OCR tokens of their photos"
    examples = assemble(enriched, events)
    assert len(examples) == 12
    split = {e.request_id: e.split for e in examples}
    assert split == {
        rid: ("test" if s == "test" else "train") for rid, s in synthetic.splits.items()
    }
    ae = next(e for e in examples if e.task == "AE")
    assert set(orjson.loads(ae.output)) == set(synthetic.keys)
    assert "OCR Tokens:" in ae.sample().user_message()


def test_a_set_that_pins_val_keeps_it_by_group_and_one_that_does_not_is_hashed() -> None:
    labels = [{"request_id": r, "task": "LG", "label": "{}"} for r in ("a1", "a2", "b", "c")]
    groups = {"a1": "A", "a2": "A"}
    pinned = {"a1": "val", "a2": "train", "b": "train", "c": "test"}
    got = {e.request_id: e.split for e in pinned_labels(labels, pinned, 0.99, groups)}
    assert got == {"a1": "val", "a2": "val", "b": "train", "c": "test"}  # no hashing
    unpinned = {**pinned, "a1": "train"}
    hashed = {e.request_id: e.split for e in pinned_labels(labels, unpinned, 0.99, groups)}
    assert hashed["c"] == "test" and hashed["a1"] == hashed["a2"] == split_of("A", "train", 0.99)


def test_labelled_listings_become_lg_examples_on_their_generated_splits(tmp_path: Path) -> None:
    listings = generate_listings(tmp_path / "syn" / "listings", 8, seed=2, val_fraction=0.4)
    listings.write()
    assert set(listings.splits.values()) == {"train", "val", "test"}
    settings = Settings(cache_dir=Path.home() / ".cache" / "caslie")
    settings = settings.model_copy(update={"voter": VoterSettings(judges=["overlap"])})
    assert prepare(tmp_path / "syn", tmp_path / "out", settings, 0.5) == (8, 8)
    enriched, events = read_prepared(tmp_path / "out")
    assert {r.request_id for r in enriched} == {
        f"auto-lg:{x['listing_id']}" for x in listings.listings
    }
    examples = assemble(enriched, events)
    assert {e.request_id: e.split for e in examples} == listings.splits
    schemas = {s["category"]: AspectSchemaEvent.model_validate(s) for s in listings.schemas}
    lg = get_task("LG")
    for example in examples:
        schema = schemas[category_of(example)]
        assert example.options == [a.name for a in schema.aspects]
        assert lg.sample_schema(example.sample()) == listing_json_schema(schema.aspects)
        assert "OCR tokens" in example.sample().user_message()


def test_a_labelled_shop_becomes_examples_of_its_six_tasks(tmp_path: Path) -> None:
    shop = generate_shop(tmp_path / "syn" / "shop", 10, seed=4)
    assert "val" in shop.splits.values()
    shop.write()
    settings = Settings(cache_dir=Path.home() / ".cache" / "caslie")
    settings = settings.model_copy(update={"voter": VoterSettings(judges=["overlap"])})
    assert prepare(tmp_path / "syn", tmp_path / "out", settings, 0.5) == (60, 60)
    enriched, events = read_prepared(tmp_path / "out")
    assert all(not r.slots and not r.captions for r in enriched), "the shop has no images"
    reviews: dict[str, list[str]] = {}
    for review in shop.reviews:
        reviews.setdefault(review["product_id"], []).append(review["text"])
    queries = {q["request_id"]: q for q in shop.queries}
    for record in enriched:
        if record.task == "AP":
            product = queries[record.request_id]["product_id"]
            assert record.inputs["document"] == "\n".join(reviews[product])
    examples = assemble(enriched, events)
    assert {e.request_id: e.split for e in examples} == shop.splits  # pinned val kept
    label = {x["request_id"]: x["label"] for x in shop.labels}
    for example in examples:
        task = get_task(example.task)
        assert example.output == task.target(label[example.request_id], example.options)

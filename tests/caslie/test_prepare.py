"""``caslie prepare``: synthetic labelled claims through the real captioner (Tesseract) and
voter stages into enriched records and split-pinned labels that training assembles."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from caslie.prepare import prepare, split_of
from schemas.records import EnrichedRecord, LabelEvent
from streams.config import Settings, VoterSettings
from training.dataset import assemble
from training.synthetic import generate

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

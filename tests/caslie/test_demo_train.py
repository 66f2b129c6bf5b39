"""``caslie demo --train``'s own logic without models: its fresh registry, and asking again
until the new version answered (the predictor switches between batches)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rich.console import Console

from caslie import demo_train
from streams.config import Settings

QUERIES = [
    {"request_id": "demo-ap", "task": "AP", "product_id": "kettle", "question": "Steel?"},
    {"request_id": "demo-sa", "task": "SA", "review_id": "rv-1", "product_id": "mug"},
]


def test_a_fresh_registry_per_run_under_the_cache_folder(tmp_path: Path) -> None:
    settings = demo_train.fresh_registry(Settings(cache_dir=tmp_path), "r1")
    assert settings.predictor.registry == str(tmp_path / "demo-train" / "r1" / "registry")
    assert Path(settings.predictor.registry).is_dir()
    assert settings.predictor.default_adapter == demo_train.ADAPTER


def test_a_query_the_old_version_answered_is_asked_again_under_a_new_id() -> None:
    asked: list[list[str]] = []

    def ask(queries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        asked.append([q["request_id"] for q in queries])
        first = len(asked) == 1
        return {
            q["request_id"]: {
                "request_id": q["request_id"],
                "label": "yes",
                "adapter": "base" if first and q["task"] == "SA" else "generalist@v1",
            }
            for q in queries
        }

    after = demo_train._ask_until_served(QUERIES, "generalist@v1", ask)
    assert asked == [["demo-ap-after1", "demo-sa-after1"], ["demo-sa-after2"]]
    assert {rid: p["request_id"] for rid, p in after.items()} == {
        "demo-ap": "demo-ap-after1",
        "demo-sa": "demo-sa-after2",
    }


def test_the_comparison_shows_each_tasks_answers_with_their_adapters() -> None:
    out = io.StringIO()
    before = {
        "demo-ap": {"label": "no", "adapter": "base"},
        "demo-sa": {"option": "B: positive", "adapter": "base"},
    }
    after = {"demo-ap": {"label": "yes", "adapter": "generalist@v1"}}
    demo_train._compare(Console(file=out, width=200), QUERIES, before, after)
    rows = [line for line in out.getvalue().splitlines() if "demo-" in line]
    assert "no  [base]" in rows[0] and "yes  [generalist@v1]" in rows[0]
    assert "B: positive  [base]" in rows[1] and "(none)" in rows[1]

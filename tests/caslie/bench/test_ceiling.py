"""The bench's ceiling section on Apache Kafka with few records: both sides count every
record, in both delivery modes (the figures themselves are measured, not tested)."""

from __future__ import annotations

import pytest

from caslie.bench.ceiling import markdown, measure
from schemas.records import TaskRequest
from streams.config import Settings

pytestmark = pytest.mark.kafka


def test_the_ceiling_section_compares_the_runner_with_the_bare_loop(
    kafka_settings: Settings,
) -> None:
    request = TaskRequest(
        request_id="r", task="SA", inputs={"review": "fine"}, options=["A: x", "B: y"]
    )
    section = measure(kafka_settings, {"requests": request}, 3000, exactly_once=True)
    (row,) = section["rows"]
    assert row["records"] == 3000 and row["record_bytes"] > 0
    for key in ("bare", "runner_at_least_once", "runner_exactly_once"):
        assert row[f"{key}_records_per_s"] > 0
    assert row["ratio_exactly_once"] == pytest.approx(
        row["runner_exactly_once_records_per_s"] / row["bare_records_per_s"]
    )
    assert "The runner against the bare client" in "\n".join(markdown(section))

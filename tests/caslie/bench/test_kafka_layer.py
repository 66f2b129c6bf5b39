from __future__ import annotations

import pytest

from caslie.bench.kafka_layer import measure_topic
from schemas import TaskRequest
from schemas.tasks.sa import SA_OPTIONS
from streams.config import Settings

pytestmark = pytest.mark.kafka


def test_every_record_is_counted_through_the_runner(kafka_settings: Settings) -> None:
    request = TaskRequest(
        request_id="r1", task="SA", inputs={"review": "fine"}, options=list(SA_OPTIONS)
    )
    row = measure_topic(kafka_settings, "requests", request, 300)
    assert row["records"] == 300
    assert row["record_bytes"] == len(request.to_json())
    assert row["end_to_end_records_per_s"] > 0 and row["produce_records_per_s"] > 0

"""``caslie dataset snapshot`` and ``caslie dataset list`` on a dataset folder."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from caslie.cli import app
from caslie.exit_codes import ExitCode
from schemas import EnrichedRecord, LabelEvent
from schemas.tasks.sa import SA_OPTIONS
from streams.artifacts import DatasetStore, LabelledRecord
from streams.artifacts.storage import LocalStorage


def test_snapshot_prints_its_counts_and_list_names_it(tmp_path: Path) -> None:
    env = {"CASLIE_TRAINING__DATASET_STORE": str(tmp_path)}
    runner = CliRunner()
    empty = runner.invoke(app, ["dataset", "snapshot"], env=env)
    assert empty.exit_code == ExitCode.INVALID_INPUT
    assert "no data yet" in empty.output and "Traceback" not in empty.output
    rows = [
        LabelledRecord(
            EnrichedRecord(
                request_id=f"r{i}", task="SA", inputs={"review": "x"}, options=list(SA_OPTIONS)
            ),
            LabelEvent(request_id=f"r{i}", task="SA", label="A"),
        )
        for i in range(3)
    ]
    DatasetStore(LocalStorage(tmp_path)).append(rows)
    taken = runner.invoke(app, ["dataset", "snapshot"], env=env)
    assert taken.exit_code == 0, taken.output
    described = json.loads(taken.output)
    assert described["rows"] == 3 and described["shards"] == 1
    listed = runner.invoke(app, ["dataset", "list"], env=env)
    assert listed.exit_code == 0
    assert listed.output.split("\t")[0] == described["snapshot"]

"""One stage fed batch after batch, without Kafka, timing only ``process``.

Imports nothing of Kafka or the settings, so a host with only the ML stack (plus pydantic
and orjson for the records) can run the bench's sections that need no broker.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel

from streams.stage import Emit, Inbound, Stage


@dataclass
class StageRun:
    outputs: list[BaseModel] = field(default_factory=list)
    rejected: int = 0
    seconds: float = 0.0


def run_stage(stage: Stage, records: Sequence[BaseModel], batch_size: int) -> StageRun:
    """Feed ``records`` to ``stage`` in batches of ``batch_size``; time only ``process``."""
    run = StageRun()
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        batch = [
            Inbound(stage.input_topics[0], 0, start + i, None, record, b"")
            for i, record in enumerate(chunk)
        ]
        began = time.perf_counter()
        results = stage.process(batch)
        run.seconds += time.perf_counter() - began
        for result in results:
            if isinstance(result, Emit):
                run.outputs += [output.value for output in result.outputs]
            else:
                run.rejected += 1
    return run

"""The stages called directly, batch after batch, without Kafka: the baseline that the
pipeline is compared with."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from caslie.bench.stage_runs import run_stage
from caslie.stages import build_captioner, build_predictor, build_voter
from streams.config import Settings
from streams.stage import Stage
from streams.topics import WORKERS
from workers.captioner import CaptionerStage

CHAIN = WORKERS[1:]


@dataclass
class Stages:
    """The three worker stages with their models loaded once for every section."""

    captioner: Stage
    voter: Stage
    predictor: Stage

    @classmethod
    def load(cls, settings: Settings) -> Stages:
        return cls(build_captioner(settings), build_voter(settings), build_predictor(settings))

    def by_name(self, name: str) -> Stage:
        stage: Stage = getattr(self, name)
        return stage

    def forget_captions(self) -> None:
        """Empty the caption and OCR caches, so a timed run never profits from an earlier one."""
        if isinstance(self.captioner, CaptionerStage):
            self.captioner.forget()


@dataclass
class ChainRun:
    seconds: float
    busy_s: dict[str, float]
    outputs: dict[str, list[BaseModel]]
    rejected: int


def run_chain(stages: Stages, requests: Sequence[BaseModel], batch_size: int) -> ChainRun:
    """captioner -> voter -> predictor on the same batches a worker would take."""
    busy: dict[str, float] = dict.fromkeys(CHAIN, 0.0)
    outputs: dict[str, list[BaseModel]] = {name: [] for name in CHAIN}
    rejected = 0
    began = time.perf_counter()
    for start in range(0, len(requests), batch_size):
        records: Sequence[BaseModel] = requests[start : start + batch_size]
        for name in CHAIN:
            run = run_stage(stages.by_name(name), records, batch_size)
            busy[name] += run.seconds
            outputs[name] += run.outputs
            rejected += run.rejected
            records = run.outputs
    return ChainRun(time.perf_counter() - began, busy, outputs, rejected)

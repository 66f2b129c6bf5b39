"""``caslie status``: per-stage lag, throughput and DLQ counts, live in the terminal.

Lag and throughput come from the broker (each stage's consumer group: committed offsets
against the high watermarks of its input topics); DLQ counts per stage and kind come from the
workers' ``/metrics`` when their addresses are given, else the DLQ topic's total."""

from __future__ import annotations

import re
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from streams.config import Settings
from streams.lag import group_lag, topic_ends
from streams.topics import LAYOUT

#: stage -> (consumer group suffix, input topics), from the pipeline's layout
STAGES: dict[str, tuple[str, tuple[str, ...]]] = {s.name: (s.name, s.inputs) for s in LAYOUT}
_SAMPLE = re.compile(r"^caslie_dlq_records_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


@dataclass
class StageStatus:
    stage: str
    group: str
    committed: int = 0
    end: int = 0
    lag: int = 0
    records_per_s: float | None = None
    dlq: dict[str, float] = field(default_factory=dict)


@dataclass
class Snapshot:
    at: float
    stages: list[StageStatus]
    dlq_topic_records: int


def dlq_by_stage(urls: list[str]) -> dict[str, dict[str, float]]:
    """``caslie_dlq_records_total`` per stage and kind, summed over the given workers."""
    counts: dict[str, dict[str, float]] = {}
    for url in urls:
        with urllib.request.urlopen(url, timeout=5) as reply:
            text = reply.read().decode()
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if not match:
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
            stage = counts.setdefault(labels.get("stage", "?"), {})
            kind = labels.get("kind", "?")
            stage[kind] = stage.get(kind, 0.0) + float(match["value"])
    return counts


def snapshot(settings: Settings, metrics_urls: list[str]) -> Snapshot:
    stages = []
    for stage, (suffix, topics) in STAGES.items():
        group = f"{settings.topic_prefix}{suffix}"
        lag = group_lag(settings, group, topics)
        stages.append(StageStatus(stage, group, lag.committed, lag.end, lag.lag))
    dlq_total = sum(topic_ends(settings, ("dlq",)).values())
    if metrics_urls:
        per_stage = dlq_by_stage(metrics_urls)
        for status in stages:
            status.dlq = per_stage.get(status.stage, {})
    return Snapshot(time.time(), stages, dlq_total)


def with_rates(current: Snapshot, previous: Snapshot | None) -> Snapshot:
    if previous is not None and current.at > previous.at:
        before = {s.stage: s.committed for s in previous.stages}
        for status in current.stages:
            status.records_per_s = (status.committed - before.get(status.stage, 0)) / (
                current.at - previous.at
            )
    return current


def table(snap: Snapshot, settings: Settings) -> Any:
    from rich.table import Table

    out = Table(
        title=f"caslie status  {settings.bootstrap_servers}  prefix {settings.topic_prefix}",
        caption=f"DLQ topic: {snap.dlq_topic_records} records   "
        + time.strftime("%H:%M:%S", time.localtime(snap.at)),
    )
    for column in ("stage", "group", "committed", "lag", "records/s", "DLQ by kind"):
        out.add_column(column, justify="left" if column in ("stage", "group") else "right")
    for s in snap.stages:
        rate = "…" if s.records_per_s is None else f"{s.records_per_s:.1f}"
        dlq = ", ".join(f"{k} {v:.0f}" for k, v in sorted(s.dlq.items())) or "-"
        out.add_row(s.stage, s.group, str(s.committed), str(s.lag), rate, dlq)
    return out

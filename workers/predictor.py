"""uniM3: assemble the input (kept captions in, rejected ones out), pick the adapter, and
answer with a legal option every time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from schemas.base import now
from schemas.records import EnrichedRecord, Prediction, TraceEntry
from schemas.tasks.assembly import build_sample
from schemas.tasks.catalog import get_task
from streams import metrics
from streams.stage import Emit, Inbound, Output, Result
from workers.backends.base import OptionScorer
from workers.engine import engine_failed

STAGE = "predictor"
PIPELINE = ("router", "captioner", "voter", STAGE)
FAILED = "#failed"

#: Adapter name wanted by a request -> the loaded immutable ref (``name@vN``) or ``None``
#: for the base model.
AdapterResolver = Callable[[str], str | None]


class AdapterSource(Protocol):
    """Where the loaded adapters come from (:class:`~workers.adapters.AdapterWatcher`)."""

    def resolve(self, name: str) -> str | None: ...

    def pinned(self) -> AbstractContextManager[None]:
        """Held by a batch: the versions it resolved stay loaded until it is done."""
        ...

    def ready(self, timeout: float) -> bool: ...

    def check(self) -> None:
        """Raise :class:`~streams.stage.FatalStageError` once the source failed."""
        ...


def latencies(timestamps: dict[str, float]) -> dict[str, float]:
    """Seconds each stage took, from consecutive stage timestamps."""
    out: dict[str, float] = {}
    previous = None
    for stage in PIPELINE:
        if stage in timestamps:
            if previous is not None:
                out[stage] = round(timestamps[stage] - timestamps[previous], 4)
            previous = stage
    if "router" in timestamps and STAGE in timestamps:
        out["total"] = round(timestamps[STAGE] - timestamps["router"], 4)
    return out


class PredictorStage:
    """enriched -> predictions. With ``adapters`` it is a warming stage: not ready before
    the announced adapters are loaded, and it stops (FatalStageError) once their source
    failed; without, ``resolve_adapter`` picks the adapter."""

    name = STAGE
    input_topics = ("enriched",)
    #: A dead model engine stops the worker; anything else fails one record.
    is_fatal = staticmethod(engine_failed)

    def __init__(
        self,
        scorer: OptionScorer,
        resolve_adapter: AdapterResolver = lambda _name: None,
        default_adapter: str = "generalist",
        task_adapters: dict[str, str] | None = None,
        extra_models: Sequence[str] = (),
        adapters: AdapterSource | None = None,
    ) -> None:
        self.scorer = scorer
        self.adapters = adapters
        self.resolve_adapter = adapters.resolve if adapters is not None else resolve_adapter
        self.default_adapter = default_adapter
        self.task_adapters = task_adapters or {}
        self.extra_models = list(extra_models)

    def _adapter_for(self, record: EnrichedRecord) -> str | None:
        wanted = record.adapter or self.task_adapters.get(record.task) or self.default_adapter
        return None if wanted == "base" else self.resolve_adapter(wanted)

    def ready(self, timeout: float) -> bool:
        return self.adapters is None or self.adapters.ready(timeout)

    def process(self, batch: Sequence[Inbound]) -> Sequence[Result]:
        if self.adapters is None:
            return self._process(batch)
        self.adapters.check()
        with self.adapters.pinned():
            return self._process(batch)

    def _process(self, batch: Sequence[Inbound]) -> Sequence[Result]:
        records = [item.value for item in batch]
        groups: dict[str | None, list[int]] = defaultdict(list)
        for i, record in enumerate(records):
            assert isinstance(record, EnrichedRecord)
            groups[self._adapter_for(record)].append(i)

        predictions: list[Prediction | None] = [None] * len(records)
        for adapter, indices in groups.items():
            prompts, labels, kept_slots = [], [], []
            for i in indices:
                record = records[i]
                assert isinstance(record, EnrichedRecord)
                kept = {v.slot for v in record.verdicts if v.keep}
                captions = {c.slot: c.text for c in record.captions if c.slot in kept and c.text}
                prompts.append(build_sample(record, captions).user_message())
                labels.append(get_task(record.task).labels(record.options))
                kept_slots.append(sorted(captions))
            with metrics.MODEL_SECONDS.labels(STAGE, self.scorer.name).time():
                choices = self.scorer.choose(prompts, labels, adapter)
            stamp = now()
            for i, choice, used in zip(indices, choices, kept_slots, strict=True):
                record = records[i]
                assert isinstance(record, EnrichedRecord)
                label = choice.label or FAILED
                option = next((o for o in record.options if o.split(":", 1)[0] == label), None)
                timestamps = {**record.timestamps, STAGE: stamp}
                models = [c.model for c in record.captions if c.model]
                metrics.PREDICTIONS.labels(record.task.value, label, adapter or "base").inc()
                predictions[i] = Prediction(
                    request_id=record.request_id,
                    task=record.task,
                    label=label,
                    option=option,
                    scores=choice.scores,
                    adapter=adapter or "base",
                    models=sorted({*models, *self.extra_models, self.scorer.name}),
                    captions_used=used,
                    caption_errors={c.slot: c.error for c in record.captions if c.error},
                    timestamps=timestamps,
                    latencies=latencies(timestamps),
                    trace=[
                        *record.trace,
                        TraceEntry(
                            stage=STAGE, at=stamp, model=self.scorer.name, detail=adapter or "base"
                        ),
                    ],
                )
        return [
            Emit([Output("predictions", p.request_id, p, f"{p.request_id}:{STAGE}")])
            for p in predictions
            if p is not None
        ]

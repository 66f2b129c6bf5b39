"""uniM3: assemble the input (kept captions and OCR tokens in, rejected captions out) through
the request's task, pick the adapter, and answer with a legal answer every time: an option or
yes/no by option scoring, a JSON object (AE's keys; LG's listing draft under its category's
schema, :meth:`~schemas.tasks.spec.Task.answer_schema`) by schema-constrained decoding."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from schemas.base import now
from schemas.dlq import ErrorKind
from schemas.records import EnrichedRecord, Prediction, TraceEntry
from schemas.tasks.answers import canonical_json
from schemas.tasks.registry import get_task
from schemas.tasks.sample import kept_captions, sample_of
from streams import metrics
from streams.stage import Emit, Inbound, Reject, Result
from streams.topics import LAYOUT as LAYOUT_ORDER
from streams.topics import STAGE_LAYOUT
from workers.backends.base import Choice, JsonExtractor, OptionScorer
from workers.engine import engine_failed

if TYPE_CHECKING:  # the direct path fetches images: settings a GPU bench host lacks
    from workers.direct import DirectPath

LAYOUT = STAGE_LAYOUT["predictor"]
STAGE = LAYOUT.name
#: The stages whose timestamps give the latencies, in order.
PIPELINE = tuple(s.name for s in LAYOUT_ORDER if s.name != "router.waiting")
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
    input_topics = LAYOUT.inputs
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
        extractor: JsonExtractor | None = None,
        direct: DirectPath | None = None,
    ) -> None:
        """``scorer`` answers yes/no and option tasks; ``extractor`` JSON ones (AE): a JSON
        task without one fails its record with the reason (DLQ); ``direct`` answers its tasks
        from their images with a VLM (VIT-Pro's path) instead of ``scorer``."""
        self.scorer = scorer
        self.extractor = extractor
        self.direct = direct
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
        records: list[EnrichedRecord] = []
        for item in batch:
            assert isinstance(item.value, EnrichedRecord)
            records.append(item.value)
        groups: dict[str | None, list[int]] = defaultdict(list)
        for i, record in enumerate(records):
            groups[self._adapter_for(record)].append(i)

        results: list[Result | None] = [None] * len(records)
        for adapter, indices in groups.items():
            options: list[int] = []
            objects: list[int] = []
            drafts: list[int] = []
            direct: list[int] = []
            for i in indices:
                task = get_task(records[i].task)
                if self.direct is not None and self.direct.wants(records[i]):
                    direct.append(i)
                elif task.answer == "json":
                    has_schema = task.answer_schema(records[i]) is not None
                    (drafts if has_schema else objects).append(i)
                else:
                    options.append(i)
            if direct:
                assert self.direct is not None
                with metrics.MODEL_SECONDS.labels(STAGE, self.direct.answerer.name).time():
                    answers = self.direct.choose([records[i] for i in direct])
                for i, answer in zip(direct, answers, strict=True):
                    results[i] = (
                        Reject(ErrorKind.PROCESSING, answer)
                        if isinstance(answer, str)
                        else self._emit(
                            records[i], self.direct.adapter, answer, self.direct.answerer.name
                        )
                    )
            for i, answer in zip(options, self._choose(records, options, adapter), strict=True):
                results[i] = self._emit(records[i], adapter, answer)
            for i, obj in zip(objects, self._extract(records, objects, adapter), strict=True):
                results[i] = self._emit(records[i], adapter, obj)
            for i, text in zip(drafts, self._drafts(records, drafts, adapter), strict=True):
                results[i] = self._emit(records[i], adapter, text)
        return [r for r in results if r is not None]

    def _choose(
        self, records: Sequence[EnrichedRecord], indices: list[int], adapter: str | None
    ) -> list[Choice]:
        if not indices:
            return []
        prompts = [sample_of(records[i]).user_message() for i in indices]
        labels = [get_task(records[i].task).labels(records[i].options) for i in indices]
        with metrics.MODEL_SECONDS.labels(STAGE, self.scorer.name).time():
            return self.scorer.choose(prompts, labels, adapter)

    def _extract(
        self, records: Sequence[EnrichedRecord], indices: list[int], adapter: str | None
    ) -> list[dict[str, str] | None]:
        """One object per record; ``{}`` where free decoding parsed none, ``None`` for every
        record when there is no extractor."""
        if not indices:
            return []
        if self.extractor is None:
            return [None] * len(indices)
        prompts = [sample_of(records[i]).user_message() for i in indices]
        keys = [list(records[i].options) for i in indices]
        with metrics.MODEL_SECONDS.labels(STAGE, self.extractor.name).time():
            return list(self.extractor.extract(prompts, keys, adapter))

    def _drafts(
        self, records: Sequence[EnrichedRecord], indices: list[int], adapter: str | None
    ) -> list[str | None]:
        """One label per record decoded under its task's own schema (LG): the task's parse of
        the JSON text (canonical), :data:`FAILED` where free decoding wrote none; ``None``
        for every record when there is no extractor."""
        if not indices:
            return []
        if self.extractor is None:
            return [None] * len(indices)
        tasks = [get_task(records[i].task) for i in indices]
        prompts = [sample_of(records[i]).user_message() for i in indices]
        schemas = [
            task.answer_schema(records[i]) or {} for task, i in zip(tasks, indices, strict=True)
        ]
        with metrics.MODEL_SECONDS.labels(STAGE, self.extractor.name).time():
            texts = self.extractor.generate_json(prompts, schemas, adapter)
        return [
            task.parse(text, records[i].options) or FAILED
            for task, i, text in zip(tasks, indices, texts, strict=True)
        ]

    def _emit(
        self,
        record: EnrichedRecord,
        adapter: str | None,
        answer: Choice | dict[str, str] | str | None,
        model: str | None = None,
    ) -> Result:
        if answer is None:
            return Reject(
                ErrorKind.PROCESSING,
                f"{record.task} answers are JSON objects and this predictor has no JSON "
                "extractor (predictor.json_decoding)",
            )
        stamp = now()
        scores = None
        model = model or self.scorer.name
        if isinstance(answer, Choice):
            label = answer.label or FAILED
            scores = answer.scores
            option = next((o for o in record.options if o.split(":", 1)[0] == label), None)
            obj = None
        elif isinstance(answer, str):  # a draft's canonical text (LG), or FAILED
            assert self.extractor is not None
            model = self.extractor.name
            label, option, obj = answer, None, None
        else:
            assert self.extractor is not None
            model = self.extractor.name
            if set(answer) == set(record.options):
                label, option, obj = canonical_json(answer, record.options), None, answer
            else:  # free decoding wrote no object with every key (constrained never does)
                label, option, obj = FAILED, None, None
        timestamps = {**record.timestamps, STAGE: stamp}
        caption_models = [c.model for c in record.captions if c.model]
        answered = obj is not None or (isinstance(answer, str) and label != FAILED)
        metrics.PREDICTIONS.labels(
            record.task, "object" if answered else label, adapter or "base"
        ).inc()
        prediction = Prediction(
            request_id=record.request_id,
            task=record.task,
            label=label,
            option=option,
            answer=obj,
            scores=scores,
            adapter=adapter or "base",
            models=sorted({*caption_models, *self.extra_models, model}),
            captions_used=sorted(kept_captions(record)),
            caption_errors={c.slot: c.error for c in record.captions if c.error},
            timestamps=timestamps,
            latencies=latencies(timestamps),
            trace=[
                *record.trace,
                TraceEntry(stage=STAGE, at=stamp, model=model, detail=adapter or "base"),
            ],
        )
        return Emit([LAYOUT.output(prediction.request_id, prediction)])

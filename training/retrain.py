"""One retraining cycle: assemble data from the topics, train a LoRA adapter, evaluate it
against the incumbent on the validation split, gate, publish to the registry and announce
it on the ``adapters`` topic (predictors hot-load it)."""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson

from schemas.records import AdapterAnnouncement, EnrichedRecord, LabelEvent
from streams.artifacts import AdapterVersion, registry_for
from streams.clients import make_producer
from streams.config import Settings
from streams.consume import consume_records
from streams.topics import topic_name
from training.dataset import assemble
from training.evaluate import answerers, evaluate
from training.gate import GateDecision, gate
from training.lora import LoraSettings, train_lora
from training.metrics import TaskScore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CycleResult:
    decision: GateDecision
    candidate: dict[str, TaskScore]
    incumbent: dict[str, TaskScore]
    incumbent_ref: str
    published: AdapterVersion | None
    examples: dict[str, int]
    #: How the gate's answers were produced (:meth:`training.evaluate.Answerers.describe`).
    evaluation: dict[str, str | int] = field(default_factory=dict)


def read_topic_records(settings: Settings, logical: str, idle_timeout: float = 5.0) -> list[bytes]:
    return list(consume_records(settings, logical, from_beginning=True, idle_timeout=idle_timeout))


def announce(settings: Settings, entry: AdapterVersion, action: str = "publish") -> None:
    message = AdapterAnnouncement(
        name=entry.name,
        adapter_version=entry.version,
        uri=f"{entry.name}/v{entry.version}",
        base_model=entry.base_model,
        metrics=entry.metrics,
        action=action,
        published_at=time.time(),
    )
    producer = make_producer(settings)
    producer.produce(
        topic_name(settings, "adapters"), key=entry.name.encode(), value=message.to_json()
    )
    if producer.flush(30):
        raise RuntimeError("the adapter announcement was not delivered")


def _scores_json(scores: dict[str, TaskScore]) -> dict[str, dict[str, float | int]]:
    return {
        t: {"paper": s.paper, "strict": s.strict, "failures": s.failures, "n": s.n}
        for t, s in scores.items()
    }


def retrain_cycle(
    settings: Settings,
    name: str = "generalist",
    lora: LoraSettings | None = None,
    margin: float = 0.01,
    max_train: int | None = None,
    progress: bool = True,
) -> CycleResult:
    """Train on the ``train`` split, evaluate candidate and incumbent on ``val`` with the
    predictor's settings (:func:`training.evaluate.answerers`: decoding, prompt form, JSON
    decoding) and gate. Training uses the same prompt form and ``predictor.cutoff`` (in
    place of ``lora.cutoff``), so it learns the prompts that are served."""
    enriched = [EnrichedRecord.from_json(v) for v in read_topic_records(settings, "enriched")]
    labels = [LabelEvent.from_json(v) for v in read_topic_records(settings, "labels")]
    examples = assemble(enriched, labels)
    train = [e for e in examples if e.split == "train"][:max_train]
    val = [e for e in examples if e.split == "val"]
    counts = {
        "enriched": len(enriched),
        "labels": len(labels),
        "train": len(train),
        "val": len(val),
        **{f"task:{k}": v for k, v in Counter(e.task for e in train).items()},
    }
    log.info("dataset: %s", counts)
    if not train or not val:
        raise ValueError(f"not enough labelled data to train and validate: {counts}")

    registry = registry_for(settings)
    models = answerers(settings)
    lm, scorer, extractor = models.lm, models.scorer, models.extractor
    lora = replace(lora or LoraSettings(), cutoff=settings.predictor.cutoff)
    with tempfile.TemporaryDirectory(prefix="caslie-train-") as work:
        # train first, on the bare model; then load incumbent and candidate side by side
        adapter_dir = train_lora(lm, train, Path(work), lora, progress=progress)
        current = registry.current(name)
        incumbent_ref = "base"
        if current is not None:
            entry = registry.get(name, current)
            path = registry.download(name, current, settings.cache_dir / "adapter-cache")
            lm.load_adapter(entry.ref, path)
            incumbent_ref = entry.ref
        incumbent = evaluate(
            scorer, val, adapter=None if current is None else incumbent_ref, extractor=extractor
        )
        lm.load_adapter("candidate", adapter_dir)
        candidate = evaluate(scorer, val, adapter="candidate", extractor=extractor)
        decision = gate(candidate, incumbent, margin)
        log.info("gate: %s (%s)", "promote" if decision.promote else "refuse", decision.reason)
        published = None
        if decision.promote:
            snapshot = {**counts, "label_topic_records": len(labels)}
            published = registry.publish(
                name,
                adapter_dir,
                settings.predictor.model,
                metrics={
                    "val": _scores_json(candidate),
                    "incumbent": incumbent_ref,
                    "incumbent_val": _scores_json(incumbent),
                    "evaluation": models.describe(),
                },
                data_snapshot=snapshot,
            )
            registry.set_current(name, published.version)
            announce(settings, published)
    return CycleResult(
        decision, candidate, incumbent, incumbent_ref, published, counts, models.describe()
    )


def rollback(settings: Settings, name: str = "generalist") -> AdapterVersion:
    """Make the previous version current again and announce it."""
    registry = registry_for(settings)
    version = registry.rollback(name)
    entry = registry.get(name, version)
    announce(settings, entry, action="rollback")
    return entry


def cycle_summary(result: CycleResult) -> bytes:
    return orjson.dumps(
        {
            "promoted": result.decision.promote,
            "reason": result.decision.reason,
            "published": result.published.ref if result.published else None,
            "incumbent": result.incumbent_ref,
            "candidate_val": _scores_json(result.candidate),
            "incumbent_val": _scores_json(result.incumbent),
            "examples": result.examples,
            "evaluation": result.evaluation,
        },
        option=orjson.OPT_INDENT_2,
    )

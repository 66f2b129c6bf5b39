"""One retraining cycle: assemble data from the topics, train a LoRA adapter, evaluate it
against the incumbent on the validation split, gate, publish to the registry and announce
it on the ``adapters`` topic (predictors hot-load it).

Stages (:data:`STAGES`): ``sft`` trains the LoRA adapter; ``both`` then tunes it by OPAL's
preference round (:func:`training.dpo.preference_round`) and keeps the DPO adapter where it is
no worse than the SFT one on validation (:func:`~training.gate.gate` at margin 0), the SFT one
otherwise; ``dpo`` tunes the current published version. The better candidate then faces the
incumbent at the cycle's margin; when it passes, every candidate trained is published (SFT
before DPO, each with its validation metrics, ``stage`` and the version it started from) and
the better one is made current and announced.

Refinement (``refine``): the training split's LG gold outputs are cut to what each example's
own input shows (:func:`training.refine.refine_examples`) before SFT and DPO see them;
validation (the gate's) keeps its references. The summary records what was dropped."""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import orjson

from schemas.records import AdapterAnnouncement, EnrichedRecord, LabelEvent
from streams.artifacts import AdapterVersion, registry_for
from streams.clients import make_producer
from streams.config import Settings
from streams.consume import consume_records
from streams.topics import topic_name
from training.dataset import assemble
from training.dpo import DpoRound, DpoSettings, ListingJudge, preference_round
from training.evaluate import answerers, evaluate
from training.gate import GateDecision, gate
from training.lora import LoraSettings, train_lora
from training.metrics import TaskScore
from training.refine import refine_examples

log = logging.getLogger(__name__)

Stage = Literal["sft", "dpo", "both"]
STAGES: tuple[Stage, ...] = ("sft", "dpo", "both")


def parse_stage(value: str) -> Stage:
    """``value`` as a :data:`Stage`; :class:`ValueError` for anything else."""
    if value not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}, not {value!r}")
    return value


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
    stage: Stage = "sft"
    #: The candidate that faced the incumbent (``sft`` or ``dpo``).
    chosen: str = "sft"
    #: Validation scores of every candidate trained, by stage.
    stages: dict[str, dict[str, TaskScore]] = field(default_factory=dict)
    #: What the preference round did (:meth:`training.dpo.DpoRound.describe`).
    dpo: dict[str, object] = field(default_factory=dict)
    #: Stage -> the version published for it.
    versions: dict[str, str] = field(default_factory=dict)
    #: What refinement dropped from the training split
    #: (:meth:`training.refine.RefineSummary.as_dict`); empty when it did not run.
    refinement: dict[str, object] = field(default_factory=dict)


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
    stage: str = "sft",
    dpo: DpoSettings | None = None,
    judge: ListingJudge | None = None,
    refine: bool = False,
) -> CycleResult:
    """Train on the ``train`` split (``stage``: module docstring), evaluate the candidates and
        the incumbent on ``val`` with the predictor's settings
        (:func:`training.evaluate.answerers`: decoding, prompt form, JSON decoding) and gate.
        Training uses the same prompt form and ``predictor.cutoff`` (in place of ``lora.cutoff``
        and ``dpo.cutoff``), so it learns the prompts that are served. ``judge`` grades the
        preference round's drafts (default: the metrics). ``refine``: the training split is refined
    first (module docstring), then cut to ``max_train``. Raises :class:`ValueError` for an
        unknown stage, too little data, ``dpo`` without a published version, or a ``dpo`` round
        with no failed draft to learn from."""
    stage = parse_stage(stage)
    enriched = [EnrichedRecord.from_json(v) for v in read_topic_records(settings, "enriched")]
    labels = [LabelEvent.from_json(v) for v in read_topic_records(settings, "labels")]
    examples = assemble(enriched, labels)
    train = [e for e in examples if e.split == "train"]
    refinement: dict[str, object] = {}
    if refine:
        train, summary = refine_examples(train)
        refinement = summary.as_dict()
        log.info("refinement: %s", refinement)
    train = train[:max_train]
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
    current = registry.current(name)
    if stage == "dpo" and current is None:
        raise ValueError(f"--stage dpo tunes the published version of {name}, and it has none")
    models = answerers(settings)
    lm, scorer, extractor = models.lm, models.scorer, models.extractor
    lora = replace(lora or LoraSettings(), cutoff=settings.predictor.cutoff)
    dpo = replace(dpo or DpoSettings(), cutoff=settings.predictor.cutoff)
    with tempfile.TemporaryDirectory(prefix="caslie-train-") as work:
        incumbent_ref = "base"
        incumbent_path: Path | None = None
        if current is not None:
            incumbent_ref = registry.get(name, current).ref
            incumbent_path = registry.download(name, current, settings.cache_dir / "adapter-cache")
        # train first, on the bare model; then load incumbent and candidates side by side
        candidates: dict[str, Path] = {}
        starts: dict[str, str] = {}
        if stage in ("sft", "both"):
            candidates["sft"] = train_lora(lm, train, Path(work) / "sft", lora, progress=progress)
            starts["sft"] = "base"
        round_: DpoRound | None = None
        if stage in ("dpo", "both"):
            start = candidates.get("sft", incumbent_path)
            assert start is not None  # checked above
            round_ = preference_round(
                lm, extractor, train, start, Path(work) / "dpo", dpo, judge, progress
            )
            if round_.adapter is not None:
                candidates["dpo"] = round_.adapter
                starts["dpo"] = "sft" if "sft" in candidates else incumbent_ref
            elif stage == "dpo":
                raise ValueError(f"no draft to learn from: {round_.describe()}")
            else:
                log.info("DPO: no failed draft to learn from; the SFT adapter stands alone")
        if incumbent_path is not None:
            lm.load_adapter(incumbent_ref, incumbent_path)
        incumbent = evaluate(
            scorer, val, adapter=None if current is None else incumbent_ref, extractor=extractor
        )
        scores: dict[str, dict[str, TaskScore]] = {}
        for which, path in candidates.items():
            lm.load_adapter(f"candidate-{which}", path)
            scores[which] = evaluate(scorer, val, adapter=f"candidate-{which}", extractor=extractor)
        chosen = "dpo" if "dpo" in scores else "sft"
        if len(scores) == 2:
            versus = gate(scores["dpo"], scores["sft"], 0.0)
            log.info("DPO against SFT: %s", versus.reason)
            chosen = "dpo" if versus.promote else "sft"
        candidate = scores[chosen]
        decision = gate(candidate, incumbent, margin)
        log.info(
            "gate (%s): %s (%s)",
            chosen,
            "promote" if decision.promote else "refuse",
            decision.reason,
        )
        published = None
        versions: dict[str, str] = {}
        if decision.promote:
            snapshot: dict[str, object] = {**counts, "label_topic_records": len(labels)}
            if refine:
                snapshot["refinement"] = refinement
            for which, path in candidates.items():  # sft before dpo
                metrics: dict[str, object] = {
                    "val": _scores_json(scores[which]),
                    "stage": which,
                    "start": versions.get(starts[which], starts[which]),
                    "incumbent": incumbent_ref,
                    "incumbent_val": _scores_json(incumbent),
                    "evaluation": models.describe(),
                }
                if which == "dpo" and round_ is not None:
                    metrics["dpo"] = round_.describe()
                entry = registry.publish(
                    name, path, settings.predictor.model, metrics=metrics, data_snapshot=snapshot
                )
                versions[which] = entry.ref
                if which == chosen:
                    published = entry
            assert published is not None
            registry.set_current(name, published.version)
            announce(settings, published)
    return CycleResult(
        decision,
        candidate,
        incumbent,
        incumbent_ref,
        published,
        counts,
        models.describe(),
        stage,
        chosen,
        scores,
        round_.describe() if round_ is not None else {},
        versions,
        refinement,
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
            "stage": result.stage,
            "chosen": result.chosen,
            "stages_val": {k: _scores_json(v) for k, v in result.stages.items()},
            "dpo": result.dpo,
            "versions": result.versions,
            "refinement": result.refinement,
        },
        option=orjson.OPT_INDENT_2,
    )

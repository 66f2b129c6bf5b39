"""One retraining cycle: read a snapshot of the accumulated dataset, train a LoRA adapter,
evaluate it against the incumbent on the validation split, gate, publish to the registry and
announce it on the ``adapters`` topic (predictors hot-load it).

Data: a snapshot of :mod:`streams.artifacts.datasets` (``new``: one taken now, the default;
or the id of an earlier one, ``latest``), never whatever the topics still hold; its id is
recorded with every version published and in the run's summary. The accumulator stage fills
the dataset (``caslie run accumulator``, or ``caslie dataset accumulate`` for a bounded
catch-up).

Durable state: SFT checkpoints go to ``training.checkpoint_dir`` (:func:`checkpoint_root`)
under a folder per run (:func:`run_key`: the adapter name and every setting that shapes the
training), with ``run.json`` naming the snapshot the run trains on. A cycle killed
mid-training and started again with the same settings finds that folder, trains on the same
snapshot and resumes from its last checkpoint; a cycle that ends (published, kept the
incumbent, or refused its data) removes it. Every ended cycle writes its summary to the
registry (:meth:`~streams.artifacts.registry.AdapterRegistry.record_run`).

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

import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import orjson

from schemas.records import AdapterAnnouncement
from streams.artifacts import (
    AdapterVersion,
    DatasetError,
    Snapshot,
    dataset_store_for,
    registry_for,
)
from streams.artifacts.datasets import records_and_labels
from streams.artifacts.storage import LocalStorage
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


class TrainingDataError(ValueError):
    """The snapshot holds too little labelled data, or nothing a ``dpo`` stage can learn
    from, or there is no published version for ``dpo`` to tune: retrying does not help."""


class AnnouncementError(RuntimeError):
    """The broker did not acknowledge the adapter announcement."""


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
    #: The dataset snapshot trained on (:meth:`~streams.artifacts.Snapshot.describe`).
    snapshot: dict[str, object] = field(default_factory=dict)
    #: Seconds per phase: data, train, evaluate, publish.
    timings: dict[str, float] = field(default_factory=dict)
    #: The step the SFT training resumed from (0: it started afresh).
    resumed_from_step: int = 0


def read_topic_records(settings: Settings, logical: str, idle_timeout: float = 30.0) -> list[bytes]:
    """Every record of a topic up to its end offsets when the read began (a bounded read:
    :func:`streams.consume.consume_records` ``to_end``); ``idle_timeout`` only guards a
    broker that stops answering."""
    return list(
        consume_records(
            settings, logical, from_beginning=True, idle_timeout=idle_timeout, to_end=True
        )
    )


def checkpoint_root(settings: Settings) -> Path:
    """Where durable training checkpoints live: ``training.checkpoint_dir``; unset,
    ``checkpoints/`` in the registry's folder, or ``cache_dir/checkpoints`` when the registry
    is on S3 (set ``training.checkpoint_dir`` to a persistent volume there)."""
    if settings.training.checkpoint_dir is not None:
        return settings.training.checkpoint_dir
    registry = registry_for(settings)
    if isinstance(registry.storage, LocalStorage):
        return registry.storage.root / "checkpoints"
    return settings.cache_dir / "checkpoints"


def run_key(name: str, **shaping: object) -> str:
    """The folder of one run's checkpoints: the adapter name and a digest of the settings
    that shape the training (a restart with other settings starts afresh)."""
    digest = hashlib.sha256(orjson.dumps(shaping, default=str, option=orjson.OPT_SORT_KEYS))
    return f"{name}-{digest.hexdigest()[:12]}"


def _open_run(settings: Settings, folder: Path, snapshot_id: str) -> tuple[Snapshot, bool]:
    """The snapshot this run trains on, and whether it resumes an unfinished run: the one
    ``folder/run.json`` names when a killed run left it, else ``snapshot_id`` (``new``: one
    taken now), recorded in ``run.json`` before training starts."""
    store = dataset_store_for(settings)
    marker = folder / "run.json"
    if marker.is_file():
        try:
            earlier = str(orjson.loads(marker.read_bytes())["snapshot"])
            if snapshot_id in ("new", "latest", earlier):
                log.info("resuming the unfinished run in %s on snapshot %s", folder, earlier)
                return store.get(earlier), True
            log.warning(
                "an unfinished run in %s trained on snapshot %s; --snapshot %s asks for "
                "another: starting afresh",
                folder,
                earlier,
                snapshot_id,
            )
        except (orjson.JSONDecodeError, KeyError, DatasetError) as exc:
            log.warning("the unfinished run in %s cannot resume (%s): starting afresh", folder, exc)
        shutil.rmtree(folder, ignore_errors=True)
    snap = store.snapshot() if snapshot_id == "new" else store.get(snapshot_id)
    folder.mkdir(parents=True, exist_ok=True)
    partial = marker.with_name(".run.json.tmp")
    partial.write_bytes(orjson.dumps({"snapshot": snap.id, "started_at": time.time()}))
    os.replace(partial, marker)  # whole or absent: a kill mid-write leaves no torn marker
    return snap, False


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
        raise AnnouncementError(
            f"the announcement of {entry.ref} was not delivered to the adapters topic "
            f"({settings.bootstrap_servers}): predictors will load it at their next start"
        )


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
    snapshot: str = "new",
) -> CycleResult:
    """Train on the ``train`` split (``stage``: module docstring), evaluate the candidates and
    the incumbent on ``val`` with the predictor's settings (:func:`training.evaluate.answerers`:
    decoding, prompt form, JSON decoding) and gate. Training uses the same prompt form and
    ``predictor.cutoff`` (in place of ``lora.cutoff`` and ``dpo.cutoff``), so it learns the
    prompts that are served. ``judge`` grades the preference round's drafts (default: the
    metrics). ``refine``: the training split is refined first (module docstring), then cut to
    ``max_train``. ``snapshot``: the dataset snapshot to train on (``new``, ``latest`` or an
    id; a killed run's restart keeps its own: module docstring).

    Raises :class:`ValueError` for an unknown stage; :class:`TrainingDataError` for too little
    data, ``dpo`` without a published version, or a ``dpo`` round with no failed draft to
    learn from; :class:`~streams.artifacts.DatasetError` for a dataset without data or an
    unknown snapshot."""
    stage = parse_stage(stage)
    lora = replace(lora or LoraSettings(), cutoff=settings.predictor.cutoff)
    dpo = replace(dpo or DpoSettings(), cutoff=settings.predictor.cutoff)
    shaping = {
        "stage": stage,
        "lora": lora,
        "dpo": dpo,
        "max_train": max_train,
        "model": settings.predictor.model,  # a new base model must not resume an old run
    }
    folder = checkpoint_root(settings) / run_key(name, refine=refine, **shaping)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    snap, resumed = _open_run(settings, folder, snapshot)
    try:
        result = _cycle(
            settings,
            name,
            lora,
            dpo,
            margin,
            max_train,
            progress,
            stage,
            judge,
            refine,
            snap,
            folder,
            timings,
            started,
        )
    except (TrainingDataError, DatasetError):
        shutil.rmtree(folder, ignore_errors=True)  # the data was refused: the run ended
        raise
    except BaseException:
        if not resumed and not (folder / "sft").exists():
            shutil.rmtree(folder, ignore_errors=True)  # nothing to resume: no stale marker
        raise  # a crash: the folder stays for the restart to resume
    shutil.rmtree(folder, ignore_errors=True)  # the run ended: nothing to resume
    return result


def _cycle(
    settings: Settings,
    name: str,
    lora: LoraSettings,
    dpo: DpoSettings,
    margin: float,
    max_train: int | None,
    progress: bool,
    stage: Stage,
    judge: ListingJudge | None,
    refine: bool,
    snap: Snapshot,
    folder: Path,
    timings: dict[str, float],
    started: float,
) -> CycleResult:
    enriched, labels = records_and_labels(dataset_store_for(settings).read(snap))
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
        "snapshot_rows": snap.rows,
        "enriched": len(enriched),
        "labels": len(labels),
        "train": len(train),
        "val": len(val),
        **{f"task:{k}": v for k, v in Counter(e.task for e in train).items()},
    }
    log.info("dataset %s: %s", snap.id, counts)
    if not train or not val:
        raise TrainingDataError(
            f"not enough labelled data to train and validate in snapshot {snap.id}: {counts}"
        )

    registry = registry_for(settings)
    current = registry.current(name)
    if stage == "dpo" and current is None:
        raise TrainingDataError(
            f"--stage dpo tunes the published version of {name}, and it has none"
        )
    models = answerers(settings)
    lm, scorer, extractor = models.lm, models.scorer, models.extractor
    timings["data"] = time.perf_counter() - started
    resumed_from = 0
    with tempfile.TemporaryDirectory(prefix="caslie-train-") as work:
        incumbent_ref = "base"
        incumbent_path: Path | None = None
        if current is not None:
            incumbent_ref = registry.get(name, current).ref
            incumbent_path = registry.download(name, current, settings.cache_dir / "adapter-cache")
        # train first, on the bare model; then load incumbent and candidates side by side
        candidates: dict[str, Path] = {}
        starts: dict[str, str] = {}
        mark = time.perf_counter()
        if stage in ("sft", "both"):
            # the run's durable folder: a killed cycle resumes from its last checkpoint
            candidates["sft"] = train_lora(lm, train, folder / "sft", lora, progress=progress)
            starts["sft"] = "base"
            resumed_from = _resumed_from(folder / "sft")
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
                raise TrainingDataError(f"no draft to learn from: {round_.describe()}")
            else:
                log.info("DPO: no failed draft to learn from; the SFT adapter stands alone")
        timings["train"] = time.perf_counter() - mark
        mark = time.perf_counter()
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
        timings["evaluate"] = time.perf_counter() - mark
        mark = time.perf_counter()
        log.info(
            "gate (%s): %s (%s)",
            chosen,
            "promote" if decision.promote else "refuse",
            decision.reason,
        )
        published = None
        versions: dict[str, str] = {}
        if decision.promote:
            data: dict[str, object] = {
                **counts,
                **snap.describe(),
                "label_topic_records": len(labels),
            }
            if refine:
                data["refinement"] = refinement
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
                    name, path, settings.predictor.model, metrics=metrics, data_snapshot=data
                )
                versions[which] = entry.ref
                if which == chosen:
                    published = entry
            assert published is not None
            registry.set_current(name, published.version)
            try:
                announce(settings, published)
            except AnnouncementError:
                # published and current: the run ended, only the predictors do not know yet
                note = {"published": published.ref, "announced": False, "snapshot": snap.id}
                registry.record_run(name, orjson.dumps(note), published.version)
                shutil.rmtree(folder, ignore_errors=True)
                raise
        timings["publish"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - started
    result = CycleResult(
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
        snap.describe(),
        {k: round(v, 3) for k, v in timings.items()},
        resumed_from,
    )
    registry.record_run(name, cycle_summary(result), published.version if published else None)
    return result


def _resumed_from(out_dir: Path) -> int:
    summary = out_dir / "train.json"
    if not summary.is_file():
        return 0
    return int(orjson.loads(summary.read_bytes()).get("resumed_from_step", 0))


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
            "snapshot": result.snapshot,
            "timings": result.timings,
            "resumed_from_step": result.resumed_from_step,
        },
        option=orjson.OPT_INDENT_2,
    )

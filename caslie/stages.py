"""Build worker stages from settings and run them (``caslie run STAGE``, ``caslie run all``)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from caslie.exit_codes import ExitCode
from schemas.records import TaskRequest
from schemas.tasks.registry import get_task
from streams.clients import wait_for_broker
from streams.config import Settings
from streams.exceptions import DlqLimitExceeded
from streams.health import Health, serve
from streams.router.app import build_router
from streams.runner import StageRunner
from streams.stage import FinishingStage, Stage, WarmingStage
from streams.topics import WORKERS

if TYPE_CHECKING:
    from streams.artifacts import AdapterRegistry

log = logging.getLogger(__name__)
WORKER_STAGES = WORKERS


def build_captioner(settings: Settings) -> Stage:
    """The captioner stage, with ``captioner.prompt`` (task-conditioned or generic captions);
    with the ``ocr`` backend and ``captioner.ocr = "tesseract"`` the captioner and the OCR
    reader share one :class:`~workers.backends.ocr.Tesseract`, so each image is read once."""
    from workers.backends.base import Captioner, OcrReader
    from workers.captioner import CaptionerStage

    cfg = settings.captioner
    captioner: Captioner
    ocr: OcrReader | None = None
    tesseract = None
    if cfg.backend == "ocr" or cfg.ocr == "tesseract":
        from workers.backends.ocr import READER_NEEDS, Tesseract

        ocr_captioner = "the ocr captioner (captioner.backend = 'ocr')"
        tesseract = Tesseract(who=ocr_captioner if cfg.backend == "ocr" else READER_NEEDS)
    if cfg.ocr == "tesseract":
        from workers.backends.ocr import TesseractReader

        ocr = TesseractReader(cfg.ocr_max_words, tesseract)
    if cfg.backend == "ocr":
        from workers.backends.ocr import OcrCaptioner

        captioner = OcrCaptioner(max_lines=cfg.ocr_max_lines, tesseract=tesseract)
    elif cfg.backend == "transformers":
        from workers.backends.vlm import TransformersVlmCaptioner

        captioner = TransformersVlmCaptioner(
            _required(cfg.model, "captioner.model"), cfg.max_new_tokens
        )
    else:
        from workers.backends.vllm import VllmCaptioner

        captioner = VllmCaptioner(_required(cfg.model, "captioner.model"), cfg.max_new_tokens)
    return CaptionerStage(
        captioner,
        settings.images,
        cfg.cache_size,
        ocr=ocr,
        ocr_wanted=_every_request if cfg.ocr_for == "all" else _ocr_task,
        prompt=cfg.prompt,
    )


def _every_request(_request: TaskRequest) -> bool:
    return True


def _ocr_task(request: TaskRequest) -> bool:
    """Whether the request's task puts OCR tokens into its prompt."""
    return get_task(request.task).ocr_tokens


def _required(value: str | None, name: str) -> str:
    if not value:
        raise ValueError(f"{name} must name a model folder for this backend")
    return value


def build_voter(settings: Settings) -> Stage:
    """The voter with ``voter.judges`` in their order (the order the authors' plurality
    breaks ties by); with an even count a tie goes by the summed yes-margin
    (:func:`workers.vote.majority`)."""
    from workers.backends.base import Judge
    from workers.voter import VoterStage

    cfg = settings.voter
    judges: list[Judge] = []
    if cfg.mode == "mv":
        for name in cfg.judges:
            if name == "minilm":
                from workers.backends.embedding import EmbeddingJudge

                judges.append(EmbeddingJudge(cfg.minilm_threshold))
            elif name == "overlap":
                from workers.backends.lexical import OverlapJudge

                judges.append(OverlapJudge(cfg.overlap_threshold))
            else:
                from workers.backends.causal_lm import CausalLM, LlmJudge

                judges.append(LlmJudge(CausalLM(name, settings.cache_dir), cfg.decoding))
    return VoterStage(judges, cfg.mode)


def build_predictor(settings: Settings) -> Stage:
    """The predictor stage: option scoring and JSON extraction on one model,
    ``predictor.backend`` saying which (a private transformers :class:`CausalLM` or one vLLM
    :class:`~workers.backends.vllm.LoraEngine`), into which the adapter watcher loads the
    announced registry versions."""
    from streams.artifacts import registry_for
    from workers.adapters import AdapterHost, AdapterWatcher
    from workers.backends.base import JsonExtractor, OptionScorer
    from workers.predictor import PredictorStage

    cfg = settings.predictor
    direct = None
    if cfg.direct_tasks:  # checked before any model loads
        from workers.backends.vlm_answer import TransformersVlmAnswerer
        from workers.direct import DirectPath, check_direct_tasks

        check_direct_tasks(cfg.direct_tasks)
        vlm = TransformersVlmAnswerer(_required(cfg.vlm, "predictor.vlm"), cfg.vlm_max_side)
        adapter = None
        if cfg.vlm_adapter is not None:
            adapter = f"{cfg.vlm_adapter.name}@local"
            vlm.load_adapter(adapter, cfg.vlm_adapter)
        direct = DirectPath(vlm, cfg.direct_tasks, settings.images, adapter)
    registry = registry_for(settings)
    cache = settings.cache_dir / "adapter-cache"
    scorer: OptionScorer
    extractor: JsonExtractor
    host: AdapterHost
    if cfg.backend == "vllm":
        from workers.backends.vllm import LoraEngine, VllmJsonExtractor, VllmOptionScorer
        from workers.models import model_folder

        engine = LoraEngine(
            str(model_folder(cfg.model, settings.cache_dir)),
            max_lora_rank=_served_lora_rank(settings, registry, cache),
            prompt_format=cfg.prompt_format,
            cutoff=cfg.cutoff,
        )
        scorer, extractor, host = VllmOptionScorer(engine), VllmJsonExtractor(engine), engine
    else:
        from training.evaluate import answerers

        # the same model, scorer and extractor caslie eval and the retrain gate measure
        models = answerers(settings)
        scorer, extractor, host = models.scorer, models.extractor, models.lm
    watcher = AdapterWatcher(settings, host, registry, cache)
    return PredictorStage(
        scorer,
        default_adapter=cfg.default_adapter,
        task_adapters=cfg.task_adapters,
        adapters=watcher.start(),  # not ready before the announced adapters are loaded
        extractor=extractor,
        direct=direct,
    )


def _served_lora_rank(settings: Settings, registry: AdapterRegistry, cache: Path) -> int:
    """The adapter rank a vLLM predictor's engine is built for: ``vllm_max_lora_rank``, else
    the largest rank of the current registry versions of the adapters it serves by default
    (``default_adapter``, ``task_adapters``; downloaded into ``cache``, where the watcher
    finds them), else 16 (vLLM's default)."""
    from workers.backends.vllm import adapter_rank

    cfg = settings.predictor
    if cfg.vllm_max_lora_rank is not None:
        return cfg.vllm_max_lora_rank
    ranks = []
    for name in sorted({cfg.default_adapter, *cfg.task_adapters.values()} - {"base"}):
        version = registry.current(name)
        if version is not None:
            ranks.append(adapter_rank(registry.download(name, version, cache)))
    return max(ranks, default=16)


#: ``caslie run NAME`` -> the stages that process runs (the router is two: see its package).
BUILDERS: dict[str, Callable[[Settings], list[Stage]]] = {
    "router": build_router,
    "captioner": lambda s: [build_captioner(s)],
    "voter": lambda s: [build_voter(s)],
    "predictor": lambda s: [build_predictor(s)],
    # beside the pipeline: not in ``all`` (streams.topics.SIDE_STAGES)
    "accumulator": lambda s: [build_accumulator(s)],
}


def build_accumulator(settings: Settings) -> Stage:
    """The accumulator (:mod:`training.accumulate`): enriched + labels -> dataset shards."""
    from training.accumulate.app import build_accumulator as build

    return build(settings)


def run_stages(
    settings: Settings, which: str, stop: threading.Event, broker_wait: float = 30.0
) -> int:
    """Run one worker (``router``, ``captioner``, ...) or, with ``all``, every one of them,
    each stage in a thread of this process. Returns the exit code; the broker is asked first
    (up to ``broker_wait`` seconds), its answer reported after the stages are built, so a
    missing backend is :attr:`ExitCode.BACKEND_MISSING` even without a broker, and without
    one no stage's Kafka client is left retrying: :attr:`ExitCode.UNAVAILABLE` at once."""
    from workers.backends.base import BackendUnavailable

    names = list(WORKER_STAGES) if which == "all" else [which]
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        log.error("unknown stage %r; known: %s, all", which, ", ".join(BUILDERS))
        return ExitCode.UNKNOWN_STAGE
    log.info("settings: %s", json.dumps(settings.redacted(), default=str))
    unreachable: TimeoutError | None = None
    try:
        wait_for_broker(settings, timeout=broker_wait)
    except TimeoutError as no_answer:
        unreachable = no_answer
    health = Health(lambda: wait_for_broker(settings, timeout=2.0))
    if settings.metrics_port:
        serve(health, settings.metrics_port)
        log.info("metrics and health on :%d (/metrics /healthz /readyz)", settings.metrics_port)
    errors: list[BaseException] = []
    try:
        stages = [stage for name in names for stage in BUILDERS[name](settings)]
    except BackendUnavailable as missing:  # a package, GPU, binary or model folder
        log.error("cannot start %s: %s", which, missing)
        return ExitCode.BACKEND_MISSING
    except ValueError as invalid:  # settings no backend can work with (a model folder unset)
        log.error("cannot start %s: %s", which, invalid)
        return ExitCode.INVALID_SETTING
    if unreachable is not None:
        log.error("cannot start %s: %s", which, unreachable)
        return ExitCode.UNAVAILABLE
    runners = [StageRunner(stage, settings) for stage in stages]
    warming: list[WarmingStage] = [r.stage for r in runners if isinstance(r.stage, WarmingStage)]
    threads = []
    for runner in runners:

        def target(r: StageRunner = runner) -> None:
            try:
                r.run(stop)
            except BaseException as exc:
                errors.append(exc)
                health.failed(f"{r.stage.name}: {type(exc).__name__}: {exc}")
                stop.set()

        thread = threading.Thread(target=target, name=f"stage-{runner.stage.name}")
        thread.start()
        threads.append(thread)
    log.info("running %s", ", ".join(r.stage.name for r in runners))
    loaded = False
    while any(t.is_alive() for t in threads):
        if not loaded and not errors and _all_ready(warming):
            health.models_loaded()
            loaded = True
        for t in threads:
            t.join(0.2)
    if not errors:
        for runner in runners:
            if isinstance(runner.stage, FinishingStage):
                try:
                    runner.stage.finish()
                except Exception as failed:
                    errors.append(failed)
    if any(isinstance(e, DlqLimitExceeded) for e in errors):
        return ExitCode.DLQ_LIMIT
    if errors:
        for exc in errors:
            log.error("stage failed: %s: %s", type(exc).__name__, exc)
        return ExitCode.STAGE_FAILED
    return ExitCode.OK


def _all_ready(stages: list[WarmingStage]) -> bool:
    try:
        return all(s.ready(0) for s in stages)
    except Exception:  # the stage's own thread reports it and stops the worker
        return False

"""Configuration: ``CASLIE_``-prefixed environment variables over a TOML file over defaults.

Nested settings use ``__`` in env names (``CASLIE_DLQ__MAX_CONSECUTIVE=50``). The file is
named by ``CASLIE_CONFIG`` or ``--config``. Anything under ``[kafka]`` (security.protocol,
sasl.*, ssl.*) is passed through to every Kafka client and never logged.
"""

from __future__ import annotations

import contextvars
import ipaddress
import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_ENV = "CASLIE_CONFIG"
_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("config", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DlqSettings(_Section):
    #: Stop the stage after this many invalid records in a row.
    max_consecutive: int = Field(default=200, ge=1)
    #: Stop the stage when the invalid share of the last ``window`` records exceeds this.
    max_ratio: float = Field(default=0.95, gt=0, le=1)
    window: int = Field(default=500, ge=10)
    #: Bytes of the offending payload kept in the envelope: whole records by default, so
    #: ``caslie dlq replay`` can re-drive them (an envelope must stay under the broker's
    #: message limit, about 1 MB; longer payloads are cut and marked ``payload_truncated``).
    payload_max_bytes: int = Field(default=900_000, ge=0)
    #: JSON fields (at any depth; in broken JSON text too) replaced by ``"<redacted>"`` in
    #: envelopes. URL user info and credential query parameters are always redacted.
    redact_fields: list[str] = Field(default_factory=list)


class BatchSettings(_Section):
    #: Largest batch handed to a stage's model.
    max_batch: int = Field(default=16, ge=1)
    #: Longest wait for a batch to fill, in milliseconds.
    max_wait_ms: int = Field(default=200, ge=0)
    #: Records consumed but not yet committed; past this, partitions are paused.
    max_in_flight: int = Field(default=256, ge=1)
    #: Seconds the poll loop or the processing loop (one batch of the stage) may go without
    #: progress before the watchdog ends the worker with exit code 70
    #: (:mod:`streams.runner.watchdog`); generous, since a model batch can be slow. 0: off.
    stall_timeout_s: float = Field(default=600.0, ge=0)


class RouterSettings(_Section):
    #: How long a query waits for a product that has not arrived yet before going to the DLQ.
    product_wait_s: float = Field(default=30.0, ge=0)
    #: How often a waiting query is re-checked.
    retry_interval_s: float = Field(default=1.0, gt=0)
    #: Recent reviews kept per product (AP's supporting document, SA by review id).
    recent_reviews: int = Field(default=5, ge=1, le=100)
    #: Emit a CC request for every new product that carries ``category_options``.
    auto_cc: bool = False
    #: Emit an SA request for every new review.
    auto_sa: bool = False
    #: Claim tasks asked of every new claim on ``claims`` (VIT-Pro's DD, PM, AE).
    claim_tasks: list[str] = Field(default_factory=lambda: ["DD", "PM", "AE"])
    #: Tasks asked of every new listing on ``listings`` (OPAL's LG), each once its category's
    #: aspect schema is known.
    listing_tasks: list[str] = Field(default_factory=lambda: ["LG"])
    #: The attributes AE reads when a query names none (unset: the task's default keys).
    attribute_keys: list[str] | None = Field(default=None, min_length=1, max_length=20)
    #: This replica's RocksDB folder (tables + changelog checkpoint); one folder per replica,
    #: kept across restarts so a restart replays only what changed. Unset: a folder per topic
    #: prefix under ``cache_dir``/router-state.
    state_dir: Path | None = None
    #: RocksDB block cache, in MiB; the write buffers are charged to it (the state's memory).
    state_cache_mb: int = Field(default=64, ge=8)
    #: RocksDB write buffers (memtables) of all tables together, in MiB.
    state_write_buffer_mb: int = Field(default=16, ge=2)

    @field_validator("claim_tasks", "listing_tasks")
    @classmethod
    def _registered_claim_tasks(cls, codes: list[str]) -> list[str]:
        from schemas.tasks.registry import is_task, task_codes  # not at start-up: ~35 ms

        for code in codes:
            if not is_task(code):
                raise ValueError(f"unknown task {code!r}; known: {', '.join(task_codes())}")
        return codes

    @field_validator("attribute_keys")
    @classmethod
    def _distinct_keys(cls, keys: list[str] | None) -> list[str] | None:
        if keys is not None and len(set(keys)) != len(keys):
            raise ValueError(f"attribute keys repeat: {keys}")
        return keys


class ImageSettings(_Section):
    #: Largest image file fetched, in bytes.
    max_bytes: int = Field(default=10_000_000, ge=1024)
    #: Largest decoded image, in pixels (decompression-bomb guard).
    max_pixels: int = Field(default=40_000_000, ge=1)
    #: Images are resized to fit this square (aspect kept): the paper's 500x500 class.
    size: int = Field(default=500, ge=32, le=4096)
    #: Wall-clock limit of one whole fetch, in seconds: DNS, connect, TLS, status line,
    #: headers, body and redirects together (s3: the request and the body).
    timeout_s: float = Field(default=5.0, gt=0)
    max_redirects: int = Field(default=3, ge=0)
    #: CIDRs that http(s) fetches may reach although private/loopback/link-local.
    allow_networks: list[str] = Field(default_factory=list)
    #: Folders that file:// references may read from (empty: file:// is refused).
    file_roots: list[str] = Field(default_factory=list)
    #: Buckets that s3:// references may read from (empty: s3:// is refused). The worker's
    #: credentials may reach more (the adapter registry): list only image buckets.
    s3_buckets: list[str] = Field(default_factory=list)
    #: Endpoint of an S3-compatible store (MinIO, moto); empty for AWS.
    s3_endpoint_url: str | None = None
    #: Parallel image fetches per batch.
    fetch_threads: int = Field(default=8, ge=1)

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not a CIDR network (e.g. 10.0.0.0/8)") from None
        return value


class CaptionerSettings(_Section):
    #: ``ocr`` (Tesseract + colours, CPU), ``transformers`` (a VLM folder), ``vllm``.
    backend: Literal["ocr", "transformers", "vllm"] = "ocr"
    #: Model folder for the transformers/vllm backends.
    model: str | None = None
    max_new_tokens: int = Field(default=128, ge=1)
    #: Captions kept in the in-process cache (keyed by model, prompt, image sha256); as many
    #: images' OCR tokens are kept in a cache of their own (keyed by image sha256).
    cache_size: int = Field(default=10_000, ge=0)
    #: OCR lines kept in a caption, most relevant to the task context first.
    ocr_max_lines: int = Field(default=4, ge=1)
    #: OCR tokens beside each caption (``Caption.ocr_tokens``): ``tesseract`` (CPU; with the
    #: ``ocr`` backend one Tesseract run per image serves both) or ``none``.
    ocr: Literal["tesseract", "none"] = "tesseract"
    #: Which requests get OCR tokens: ``ocr_tasks`` (the tasks whose prompts carry them:
    #: VIT-Pro's DD, PM, AE) or ``all`` (CASLIE's tasks then carry them in their input too).
    ocr_for: Literal["ocr_tasks", "all"] = "ocr_tasks"
    #: Most words in an image's OCR tokens (reading order; the rest is cut).
    ocr_max_words: int = Field(default=64, ge=1)
    #: ``task`` (the method): each image is captioned with its task's prompt and context.
    #: ``generic`` (the ablation of context-free captions, as the paper's BLIP-2 baseline):
    #: every image gets one instruction, "Please generate a concise and informative caption
    #: for the product in the image within 50 words." (``GENERIC_CAPTION_PROMPT`` of
    #: ``schemas.tasks.prompts``), and no context (the ocr backend then ranks its lines by
    #: confidence alone). Captions are cached per prompt.
    prompt: Literal["task", "generic"] = "task"


class VoterSettings(_Section):
    #: ``mv``: majority vote of the judges; ``uia``: use every caption ("use it always").
    mode: Literal["mv", "uia"] = "mv"
    #: Judges: LLMs, ``smollm2`` (SmolLM2-135M-Instruct), ``gemma3`` (Gemma-3-270M base) or
    #: an LLM folder, answering the CQE question by yes/no scoring; opt-in heuristics that
    #: never read the question: ``minilm`` (embedding relevance), ``overlap`` (lexical
    #: overlap). The default is a vote of the two offline LLM families; an even count breaks
    #: a tie by the summed yes-margin (:func:`workers.vote.majority`). The paper's five
    #: judges: ``deploy/config/judges-5.toml``.
    judges: list[str] = Field(default_factory=lambda: ["smollm2", "gemma3"])
    #: LLM judges: ``score`` compares P(yes) with P(no) in one forward pass per batch (no
    #: parse failures); ``generate``: the authors' way, free generation parsed afterwards.
    decoding: Literal["score", "generate"] = "score"
    #: Cosine similarity above which the embedding judge says yes.
    minilm_threshold: float = 0.25
    #: Share of caption words found in the task context above which the overlap judge says yes.
    overlap_threshold: float = 0.15


class PredictorSettings(_Section):
    #: ``smollm2`` (the packaged SmolLM2-135M-Instruct) or a causal-LM folder.
    model: str = "smollm2"
    #: ``score``: one forward pass, argmax over the legal options (no parse failures);
    #: ``generate``: the authors' way, free generation parsed afterwards.
    decoding: Literal["score", "generate"] = "score"
    #: Adapter used when a request names none (``base`` for the bare model).
    default_adapter: str = "generalist"
    #: Task code -> adapter name overrides.
    task_adapters: dict[str, str] = Field(default_factory=dict)
    #: Adapter registry location: a folder or ``s3://bucket/prefix``.
    registry: str | None = None
    #: JSON tasks (AE): ``constrained`` decodes under the object's JSON schema (valid JSON
    #: with exactly the asked keys, by construction); ``free``: greedy text parsed afterwards
    #: (the paper-compatible path, kept to measure against).
    json_decoding: Literal["constrained", "free"] = "constrained"
    #: Tasks answered by VIT-Pro's direct path: ``vlm`` answers from the images and OCR
    #: tokens instead of the text LLM reading captions (yes/no and option tasks only).
    direct_tasks: list[str] = Field(default_factory=list)
    #: Vision-language model folder for ``direct_tasks``.
    vlm: str | None = None
    #: A LoRA adapter folder for ``vlm`` (VIT-Pro's: on the language model's attention),
    #: loaded at start and used for every direct answer; unset: the bare VLM.
    vlm_adapter: Path | None = None
    #: Longest image side the direct path feeds the VLM (VIT-Pro: 512 is as good as native).
    vlm_max_side: int = Field(default=512, ge=64, le=4096)
    #: The engine of option scoring and JSON extraction: ``transformers`` (CPU or CUDA, peft
    #: adapters) or ``vllm`` (a GPU and the ``[gpu]`` extra; one engine, multi-LoRA). ``vllm``
    #: decodes under constraints only (``decoding = "score"`` is choice-constrained greedy
    #: decoding there, ``json_decoding = "constrained"``), and ``caslie retrain`` then trains
    #: adapters without lm_head (docs/training.md).
    backend: Literal["transformers", "vllm"] = "transformers"
    #: vllm: the largest adapter rank the engine serves (vLLM's ``max_lora_rank``, fixed at
    #: start, rounded up to a value vLLM accepts: 8, 16, 32, 64 ...). Unset: the largest rank
    #: of the current registry versions of ``default_adapter`` and ``task_adapters``, 16 when
    #: none is published. An adapter above it is refused with the value that serves it.
    vllm_max_lora_rank: int | None = Field(default=None, ge=1, le=512)

    #: How uniM3 messages reach the LLM, identically in serving, training and evaluation
    #: (:mod:`workers.backends.prompt_form`): ``mistral_raw``, the authors' raw Mistral form
    #: (as uniM3-M was trained); ``chat``, the model's chat template; ``auto``, the Mistral
    #: form for Mistral-family models and the chat template otherwise.
    prompt_format: Literal["auto", "mistral_raw", "chat"] = "auto"
    #: Prompt plus answer tokens of every forward pass (the LoRA training cutoff too): a
    #: longer prompt loses its beginning, never the answer budget.
    cutoff: int = Field(default=2048, ge=2)

    @model_validator(mode="after")
    def _vllm_decodes_constrained(self) -> PredictorSettings:
        if self.backend == "vllm" and (
            self.decoding != "score" or self.json_decoding != "constrained"
        ):
            raise ValueError(
                "predictor.backend = 'vllm' decodes under constraints only: set "
                "predictor.decoding = 'score' and predictor.json_decoding = 'constrained' "
                "(the free paths run on backend = 'transformers')"
            )
        return self


class TrainingSettings(_Section):
    """The accumulated dataset (:mod:`streams.artifacts.datasets`), the accumulator stage that
    fills it and ``caslie retrain``'s durable state."""

    #: Where the dataset lives: a folder or ``s3://bucket/prefix``. Unset: the adapter
    #: registry's store (``predictor.registry``), under ``datasets/``.
    dataset_store: str | None = None
    #: The dataset's name (``datasets/<name>/`` in the store).
    dataset: str = Field(default="caslie", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    #: How long the accumulator keeps an enriched record waiting for its label, and a label
    #: for its record, in seconds (30 days). Longer than the topics' retention: the table
    #: holds what the topics no longer do.
    label_wait_s: float = Field(default=30 * 86400, gt=0)
    #: Finished examples the accumulator gathers before it writes a shard.
    shard_rows: int = Field(default=5000, ge=1)
    #: ... or the longest it holds finished examples before writing them, in seconds.
    flush_interval_s: float = Field(default=300.0, gt=0)
    #: The accumulator's RocksDB folder; unset: ``cache_dir``/accumulator-state/<prefix>.
    state_dir: Path | None = None
    #: Durable training checkpoints (a persistent volume): a killed ``caslie retrain`` resumes
    #: from its last one. Unset: ``checkpoints/`` beside the registry when that is a folder,
    #: else ``cache_dir``/checkpoints.
    checkpoint_dir: Path | None = None


#: The log levels ``log_level`` accepts.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    """All caslie settings. Build with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="CASLIE_", env_nested_delimiter="__", extra="forbid"
    )

    bootstrap_servers: str = "localhost:9092"
    topic_prefix: str = "caslie."
    #: Partitions for topics that ``caslie topics create`` makes.
    partitions: int = Field(default=3, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    #: ``at_least_once``: commit after acknowledged produce, consumers dedupe on ``caslie-id``;
    #: ``exactly_once``: a Kafka transaction per batch (Apache Kafka, not the embedded broker).
    delivery: Literal["at_least_once", "exactly_once"] = "at_least_once"
    #: This replica's stable name (pod name), part of its transactional id in exactly-once
    #: mode; empty: host name + process id.
    instance_id: str | None = None
    #: An exactly-once worker's open transaction is aborted by the broker after this long.
    transaction_timeout_ms: int = Field(default=60_000, ge=1000)
    #: Extra librdkafka client settings (security.protocol, sasl.*, ssl.*).
    kafka: dict[str, str] = Field(default_factory=dict, repr=False)  # secrets: never in logs
    dlq: DlqSettings = Field(default_factory=DlqSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)
    #: Batching of one stage by name, in place of ``batch`` (``[stage_batch.router]``).
    #: The router defaults to large batches: its work per record is a table lookup.
    stage_batch: dict[str, BatchSettings] = Field(
        default_factory=lambda: {
            "router": BatchSettings(max_batch=1000, max_wait_ms=5, max_in_flight=20_000)
        }
    )
    router: RouterSettings = Field(default_factory=RouterSettings)
    images: ImageSettings = Field(default_factory=ImageSettings)
    captioner: CaptionerSettings = Field(default_factory=CaptionerSettings)
    voter: VoterSettings = Field(default_factory=VoterSettings)
    predictor: PredictorSettings = Field(default_factory=PredictorSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    #: Where model caches and converted models live.
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "caslie")
    #: Port for Prometheus metrics and health endpoints (0 = off).
    metrics_port: int = Field(default=0, ge=0, le=65535)
    log_format: Literal["json", "console"] = "console"
    #: DEBUG, INFO, WARNING, ERROR or CRITICAL (any case).
    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get() or os.environ.get(CONFIG_ENV)
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(path)))
        return tuple(sources)

    def with_file_root(self, folder: Path) -> Settings:
        """These settings with ``folder`` added to ``images.file_roots`` (``file://`` images
        are refused outside the roots)."""
        roots = [*self.images.file_roots, str(folder.resolve())]
        images = self.images.model_copy(update={"file_roots": roots})
        return self.model_copy(update={"images": images})

    def batch_for(self, stage: str) -> BatchSettings:
        """The batching of stage ``stage``: its ``stage_batch`` entry, else ``batch``."""
        return self.stage_batch.get(stage, self.batch)

    def redacted(self) -> dict[str, Any]:
        """Settings for logs: every Kafka client setting value is hidden."""
        data = self.model_dump(mode="json")
        data["kafka"] = {key: "***" for key in self.kafka}
        return data


def settings_to_env(settings: Settings) -> dict[str, str]:
    """``CASLIE_*`` variables that reproduce ``settings`` in a child process."""
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue  # unset: the child's default is the same
        text = value if isinstance(value, str) else json.dumps(value)
        env[f"CASLIE_{name.upper()}"] = text
    return env


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from (highest first) ``overrides``, env vars, the TOML file (``config_file``,
    else ``CASLIE_CONFIG``), defaults. A named file that is missing raises
    ``FileNotFoundError``, one that is not TOML ``tomllib.TOMLDecodeError``."""
    if config_file is None and os.environ.get(CONFIG_ENV):
        config_file = Path(os.environ[CONFIG_ENV])
    if config_file is not None:
        if not config_file.is_file():
            raise FileNotFoundError(f"config file {config_file} does not exist")
        tomllib.loads(config_file.read_text())  # fail early with a TOML syntax error
    token = _config_file.set(config_file)
    try:
        return Settings(**overrides)
    finally:
        _config_file.reset(token)

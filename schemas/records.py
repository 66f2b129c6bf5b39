"""Records the pipeline writes: requests, captioned and enriched records, predictions,
labels, adapter announcements.

Each pipeline record extends the one before it, so a prediction's input can always be
traced back: ``TaskRequest`` -> ``CaptionedRecord`` -> ``EnrichedRecord``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from schemas.base import Identifier, Record
from schemas.events import AspectSpec
from schemas.images import ImageRef


def _registered(code: str) -> str:
    from schemas.tasks.registry import get_task

    try:
        get_task(code)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    return code


#: A registered task's code (``AP`` ... ``AE``, or a plug-in's).
TaskName = Annotated[str, Field(min_length=1, max_length=16), AfterValidator(_registered)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TraceEntry(_Part):
    """Which stage touched a record, with which model or adapter, when."""

    stage: str
    at: float
    model: str | None = None
    detail: str | None = None


class ImageSlot(_Part):
    """One image to caption, with the values its caption and judge prompts need.

    Slot names: ``product``, ``review``, ``product1``/``product2`` (PRP), ``history/N`` and
    ``option/L`` (SR), ``claim/N`` and ``reference`` (claim tasks), ``listing/N`` (LG).
    """

    slot: str = Field(min_length=1, max_length=64)
    image: ImageRef | None = None
    caption_vars: dict[str, str] = Field(default_factory=dict)
    judge_vars: dict[str, str] = Field(default_factory=dict)


class TaskRequest(Record):
    """A fully self-contained request for one prediction (topic ``requests``)."""

    request_id: Identifier
    task: TaskName
    #: Task inputs; keys per task spec (e.g. AP: ``question``, ``document``; LG's
    #: ``aspect_schema``: its category's aspects).
    inputs: dict[str, str | list[str] | list[AspectSpec]]
    #: Option strings (``"A: ..."``); empty for yes/no tasks; the keys to fill for JSON ones
    #: (LG: the category's aspect names, up to 50).
    options: list[str] = Field(default_factory=list, max_length=50)
    slots: list[ImageSlot] = Field(default_factory=list, max_length=48)
    adapter: Identifier | None = None
    #: Stage name -> epoch seconds when that stage emitted the record.
    timestamps: dict[str, float] = Field(default_factory=dict)
    trace: list[TraceEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _inputs_match_task(self) -> TaskRequest:
        from schemas.tasks.registry import get_task

        spec = get_task(self.task)
        missing = [f for f in spec.input_fields if f not in self.inputs]
        if missing:
            raise ValueError(f"{self.task} request is missing inputs {missing}")
        if spec.answer == "lettered" and len(self.options) < 2:
            raise ValueError(f"{self.task} request needs at least two options")
        if spec.answer == "json" and not self.options:
            raise ValueError(f"{self.task} request needs the keys to fill as its options")
        for slot in self.slots:
            need = spec.caption_vars - slot.caption_vars.keys()
            need |= spec.judge_vars - slot.judge_vars.keys()
            if need:
                raise ValueError(f"slot {slot.slot!r} lacks prompt values {sorted(need)}")
        return self


class Caption(_Part):
    """The caption of one slot, or why there is none, and the OCR tokens of its image."""

    slot: str
    text: str | None = None
    model: str | None = None
    image_sha256: str | None = None
    cached: bool = False
    #: Why no caption was produced (image fetch/decoding/model error); the request goes on.
    error: str | None = None
    #: The OCR tokens of the slot's image (VIT-Pro's): the words read, in reading order
    #: (top to bottom, left to right), space-separated, at most ``captioner.ocr_max_words``;
    #: ``""`` where the image shows no readable text; ``None`` where OCR is off, not wanted by
    #: the request's task, or failed (then ``ocr_error`` says why).
    ocr_tokens: str | None = None
    #: Why OCR failed on an image that loaded; the caption and the request go on.
    ocr_error: str | None = None


class CaptionedRecord(TaskRequest):
    """A request with a caption (or a recorded failure) for every slot (topic ``captioned``)."""

    captions: list[Caption] = Field(default_factory=list)


class JudgeVote(_Part):
    judge: str
    vote: bool
    #: The yes-margin when the judge has one: log P(yes) - log P(no), or similarity minus
    #: threshold (:class:`workers.backends.base.Verdict`).
    score: float | None = None


class SlotVerdict(_Part):
    """The CQE decision for one slot's caption."""

    slot: str
    keep: bool
    mode: Literal["mv", "uia", "no_caption"]
    votes: list[JudgeVote] = Field(default_factory=list)


class EnrichedRecord(CaptionedRecord):
    """A captioned request with per-judge votes and keep decisions (topic ``enriched``)."""

    verdicts: list[SlotVerdict] = Field(default_factory=list)


class Prediction(Record):
    """A task answer (topic ``predictions``; a query that could not be answered gets a
    :class:`PredictionFailure` there instead: ``status`` tells them apart)."""

    request_id: Identifier
    task: TaskName
    status: Literal["ok"] = "ok"
    #: ``yes``/``no`` for binary tasks, the option letter, or (JSON tasks) the object's text.
    label: str
    #: The full option text for lettered tasks.
    option: str | None = None
    #: The attribute object of a JSON task (AE), keys in the asked order.
    answer: dict[str, str] | None = None
    scores: dict[str, float] | None = None
    #: ``name@vN`` of the LoRA adapter that answered, or ``base``.
    adapter: str
    models: list[str] = Field(default_factory=list)
    captions_used: list[str] = Field(default_factory=list)
    caption_errors: dict[str, str] = Field(default_factory=dict)
    timestamps: dict[str, float] = Field(default_factory=dict)
    #: Seconds spent in each stage (from the record's timestamps).
    latencies: dict[str, float] = Field(default_factory=dict)
    trace: list[TraceEntry] = Field(default_factory=list)


class PredictionFailure(Record):
    """The answer to a query that could not be answered (topic ``predictions``, keyed by its
    ``request_id`` like a :class:`Prediction`): which stage gave up, why (an
    :class:`~schemas.dlq.ErrorKind` value), and the true reason in words (e.g. "product k2
    was rejected: image url scheme 'gopher' is not allowed"). Every query ends with exactly
    one of the two on ``predictions`` (repeats carry the same ``caslie-id`` header)."""

    request_id: Identifier
    #: The query's task, where the record was readable enough to say.
    task: str | None = Field(default=None, max_length=64)
    status: Literal["failed"] = "failed"
    stage: str = Field(min_length=1, max_length=64)
    error_kind: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=2_000)
    failed_at: float


def parse_prediction(data: bytes | str) -> Prediction | PredictionFailure:
    """A ``predictions`` record as the model its ``status`` names (``ok`` when absent)."""
    obj = orjson.loads(data)
    if isinstance(obj, dict) and obj.get("status") == "failed":
        return PredictionFailure.model_validate(obj)
    return Prediction.model_validate(obj)


#: A split tag. ``train`` and ``val`` are special: training learns from ``train`` and the
#: promotion gate compares on ``val``. Every other tag is an evaluation split scored apart by
#: ``caslie eval --split``: ``test`` (in-domain), ``test-<tag>`` or ``ood-<tag>`` (held-out
#: or out-of-domain sets, e.g. ``ood-newbrands``); ``<tag>`` is 1-32 lower-case letters,
#: digits, ``_`` or ``-``, starting with a letter or digit.
SPLIT_PATTERN = r"^(train|val|test|(test|ood)-[a-z0-9][a-z0-9_-]{0,31})$"
SplitTag = Annotated[str, Field(pattern=SPLIT_PATTERN)]
#: The splits training and the gate use; any other tag is for evaluation only.
TRAINING_SPLITS = ("train", "val")


def is_split_tag(text: str) -> bool:
    """Whether ``text`` is a valid split tag (:data:`SPLIT_PATTERN`)."""
    return re.fullmatch(SPLIT_PATTERN, text) is not None


class LabelEvent(Record):
    """Ground truth or feedback for a request (topic ``labels``); latest wins."""

    request_id: Identifier
    task: TaskName
    #: ``yes``/``no``, the option letter, or (JSON tasks) the object's JSON text.
    label: str = Field(min_length=1, max_length=8_000)
    source: str | None = None
    #: Pins the labelled request to a split (:data:`SPLIT_PATTERN`: ``train``, ``val``,
    #: ``test``, ``test-<tag>``, ``ood-<tag>``; e.g. held-out brands in ``test``); unset: a
    #: hash of the request id decides (:func:`training.dataset.split_for`).
    split: SplitTag | None = None
    event_time: float | None = None


class AdapterAnnouncement(Record):
    """A published adapter version (topic ``adapters``); predictors hot-load it."""

    name: Identifier
    adapter_version: int = Field(ge=1)
    uri: str
    base_model: str
    tasks: list[TaskName] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
    action: Literal["publish", "rollback"] = "publish"
    published_at: float

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.adapter_version}"

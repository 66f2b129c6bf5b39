"""What a task is: the one class a task module subclasses.

A task module (``schemas/tasks/sa.py`` ...) holds everything about one task: its query model,
what it needs from the router's tables, its captioning / CQE / task templates, its input
assembly and prompt, its answer space, answer parsing and its metric. It ends with
``TASK = SomeTask()``; :mod:`schemas.tasks.registry` lists the built-in ones and takes plug-ins
(:func:`~schemas.tasks.registry.register`). Router, workers, training, evaluation, demo and bench
read tasks only through the registry.

Contract of a subclass:

- ``code``/``name``/``query_model`` (a :class:`schemas.events.Query` with
  ``task: Literal[code]``), ``input_fields`` (keys of ``TaskRequest.inputs``), ``answer``
  (``binary``: yes/no; ``lettered``: option letters; ``json``: an object whose keys are the
  request's ``options``), ``metric`` (a name of :data:`schemas.tasks.metrics.METRICS`);
- the three templates (``{name}`` fields); ``caption_vars``/``judge_vars`` are derived;
- :meth:`resolve` builds the self-contained request from a query and the tables, raising
  :class:`~schemas.tasks.resolving.MissingData` for what is not known yet;
- :meth:`assemble` builds the instruction sample from a request, the captions CQE kept, the
  OCR tokens per slot and the slots that had a caption at all (``captioned``: a captioned
  slot that is not kept was rejected); :meth:`prompt` renders a sample as the model's user
  message. A CASLIE task builds its input without captions and hands it to
  :meth:`with_captions`, the authors' merge (see :mod:`schemas.tasks.sample`), which
  MMECInstruct import uses too; :meth:`caption_slots` names the slots in the authors'
  caption order and :meth:`without_captions` undoes the merge.
"""

from __future__ import annotations

import string
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from schemas.tasks import answers, metrics
from schemas.tasks.sample import CAPTION_KEY, InstructionSample, SampleInput, put_caption

if TYPE_CHECKING:
    from schemas.events import ClaimEvent, ListingEvent, ProductEvent, Query, ReviewEvent
    from schemas.records import TaskRequest
    from schemas.tasks.resolving import Tables

AnswerKind = Literal["binary", "lettered", "json"]
#: Which paper a task comes from (CASLIE's tasks take the MMECInstruct input form and the
#: caption ablations of an imported file; the prompt form is the model's, for every task:
#: a Mistral-family predictor wraps VIT-Pro's messages in the authors' [INST] form too).
Family = Literal["caslie", "vitpro", "opal"]

LETTERS = "ABCDEFGHIJKLMNOPQRST"


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill ``{name}`` fields of a template; a missing field is an error, never left blank."""
    needed = template_fields(template)
    missing = needed - values.keys()
    if missing:
        raise KeyError(f"template needs {sorted(missing)}")
    return template.format_map({k: values[k] for k in needed})


def template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def letter_options(texts: Sequence[str]) -> list[str]:
    """``["x", "y"]`` -> ``["A: x", "B: y"]`` (at most 20 options, A..T)."""
    if len(texts) > len(LETTERS):
        raise ValueError(f"at most {len(LETTERS)} options, got {len(texts)}")
    return [f"{LETTERS[i]}: {text}" for i, text in enumerate(texts)]


def ordinal(n: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class Task:
    """One task; subclass it in the task's module (see the module docstring)."""

    code: ClassVar[str]
    name: ClassVar[str]
    family: ClassVar[Family] = "caslie"
    query_model: ClassVar[type[Query]]
    #: Fields of ``TaskRequest.inputs`` the task needs.
    input_fields: ClassVar[tuple[str, ...]]
    answer: ClassVar[AnswerKind]
    metric: ClassVar[str]
    #: Fixed options (``"A: ..."``); empty when they come with each request.
    options: ClassVar[tuple[str, ...]] = ()
    caption_template: ClassVar[str]
    judge_template: ClassVar[str]
    instruction: ClassVar[str]
    #: Whether the task's prompt carries the OCR tokens of its images (VIT-Pro's tasks do).
    ocr_tokens: ClassVar[bool] = False
    #: Keys of a sample's input that hold captions, one per :meth:`caption_slots` entry
    #: (left out on the direct path).
    caption_keys: ClassVar[tuple[str, ...]] = (CAPTION_KEY,)

    @property
    def caption_vars(self) -> frozenset[str]:
        """Values the caption template needs from each image slot."""
        return frozenset(template_fields(self.caption_template))

    @property
    def judge_vars(self) -> frozenset[str]:
        """Values the CQE template needs from each image slot (besides the caption)."""
        return frozenset(template_fields(self.judge_template) - {"caption"})

    def caption_prompt(self, values: Mapping[str, str]) -> str:
        return render(self.caption_template, values)

    def judge_prompt(self, values: Mapping[str, str], caption: str) -> str:
        return render(self.judge_template, {**values, "caption": caption})

    # -- answers ---------------------------------------------------------------------------

    def labels(self, options: Sequence[str]) -> list[str]:
        """The legal answers for a request with these options: ``yes``/``no``, the option
        letters, or (``json``) the keys of the object to fill."""
        if self.answer == "binary":
            return ["yes", "no"]
        if self.answer == "json":
            return list(options)
        return [opt.split(":", 1)[0].strip() for opt in options]

    def parse(self, text: str, labels: Sequence[str]) -> str | None:
        """A model's free text -> a legal answer, or ``None`` (a parse failure)."""
        if self.answer == "json":
            return answers.parse_json_answer(text, labels)
        return answers.parse_answer(text, labels)

    def target(self, label: str, options: Sequence[str]) -> str:
        """The training target for a gold label: ``yes``/``no``, the full option
        (``B: positive``), or the JSON object's text."""
        if self.answer != "lettered":
            return label
        for option in options:
            if option.split(":", 1)[0].strip() == label:
                return option
        raise ValueError(f"label {label!r} is not one of the options {list(options)}")

    def label_of(self, output: str) -> str:
        """The inverse of :meth:`target`."""
        return output.split(":", 1)[0].strip() if self.answer == "lettered" else output.strip()

    def is_legal(self, label: str, options: Sequence[str]) -> bool:
        """Whether a gold label is a legal answer of a request with these options."""
        if self.answer == "json":
            return answers.parse_json_answer(label, options) is not None
        return label in self.labels(options)

    def answer_schema(self, request: TaskRequest) -> dict[str, Any] | None:
        """The JSON Schema a ``json`` answer of this request is decoded under, when it is not
        the flat object of the request's keys (AE's, ``None``): LG's listing object. The
        predictor answers such a request by schema-constrained decoding and :meth:`parse`."""
        return None

    def sample_schema(self, sample: InstructionSample) -> dict[str, Any] | None:
        """:meth:`answer_schema` rebuilt from the sample :meth:`assemble` made of the request
        (what evaluation has of it: an instruction example keeps the sample, not the
        request); equal to it for every request."""
        return None

    def score(self, gold: Sequence[str], pred: Sequence[str]) -> float:
        """The task's metric over parsed answers."""
        return metrics.METRICS[self.metric](gold, pred)

    # -- the pipeline ----------------------------------------------------------------------

    def product_ids(self, query: Query) -> list[str]:
        """Every product id the query needs from the catalog, in order, without repeats."""
        product_id = getattr(query, "product_id", None)
        return [product_id] if product_id else []

    def resolve(self, query: Query, tables: Tables) -> TaskRequest:
        raise NotImplementedError

    def assemble(
        self,
        request: TaskRequest,
        kept: Mapping[str, str],
        ocr: Mapping[str, str] | None = None,
        captioned: Collection[str] = (),
    ) -> InstructionSample:
        raise NotImplementedError

    # -- the authors' caption merge (uniM3 input, MMECInstruct) -----------------------------

    def caption_slots(self, data: SampleInput, options: Sequence[str]) -> list[str]:
        """The image slots in the authors' caption order (MMECInstruct's ``caption_info``: one
        caption per product, in the order of the products in the input)."""
        return ["product"]

    def with_captions(
        self,
        data: SampleInput,
        options: Sequence[str],
        kept: Mapping[str, str],
        captioned: Collection[str],
    ) -> InstructionSample:
        """The sample of a caption-free input: each caption slot's key (:attr:`caption_keys`)
        set to its kept caption, ``None`` where CQE rejected it, left out where the slot had
        no caption."""
        assert isinstance(data, dict), f"{self.code}'s input is a JSON object"
        merged = dict(data)
        for key, slot in zip(self.caption_keys, self.caption_slots(data, options), strict=True):
            put_caption(merged, key, slot, kept, captioned)
        return InstructionSample(self.code, self.instruction, merged, list(options))

    def without_captions(
        self, sample: InstructionSample, kept: Mapping[str, str]
    ) -> InstructionSample:
        """The inverse of :meth:`with_captions` (``kept``: the captions it merged): the
        text-only sample."""
        if not isinstance(sample.input, dict):
            return sample
        data = {k: v for k, v in sample.input.items() if k not in self.caption_keys}
        return InstructionSample(sample.task, sample.instruction, data, list(sample.options))

    def prompt(self, sample: InstructionSample) -> str:
        """The user message of a sample (the uniM3 Instruction / Input / Options form)."""
        return sample.unim3_message()

    # -- automatic requests ----------------------------------------------------------------

    def for_product(self, product: ProductEvent) -> TaskRequest | None:
        """The request to make for a new catalog product (auto-CC), if any."""
        return None

    def for_review(self, review: ReviewEvent) -> TaskRequest | None:
        """The request to make for a new review (auto-SA), if any."""
        return None

    def auto_query(self, field: str, key: str) -> Query:
        """The query the router makes by itself for a new claim or listing: ``field`` (the
        query's ``claim_id`` / ``listing_id``) = ``key``, request id
        ``auto-<code in lower case>:<key>`` (one rule: consumers and the synthetic
        generator's labels rely on it)."""
        return self.query_model.model_validate(
            {"request_id": f"auto-{self.code.lower()}:{key}", "task": self.code, field: key}
        )

    def for_claim(self, claim: ClaimEvent) -> Query | None:
        """The query to make for a new claim (VIT-Pro's tasks), if any: a query, not a
        request, because it still has to wait for the claim's product."""
        return None

    def for_listing(self, listing: ListingEvent) -> Query | None:
        """The query to make for a new listing (OPAL's LG), if any: a query, because it may
        still have to wait for the aspect schema of the listing's category."""
        return None

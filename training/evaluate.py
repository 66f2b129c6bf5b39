"""Evaluate a model (optionally with an adapter) on instruction examples, per task.

Option and yes/no tasks are answered by an option scorer (``score`` or ``generate``
decoding); JSON tasks (AE) by a JSON extractor (constrained or free decoding). Each answer is
parsed by its task and scored by the task's metric (:func:`training.metrics.score_task`); a
listing task's score adds the other listing metrics and per-category scores, from each
example's options (its allowed aspect names) and its input's ``category`` (:func:`category_of`).
:func:`answerers` builds both from the predictor's settings (model, decoding, prompt form,
cutoff, JSON decoding), so ``caslie eval`` and the retrain gate measure what is served.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from schemas.images import ImageRef
from schemas.tasks.answers import canonical_json
from schemas.tasks.registry import get_task
from schemas.tasks.spec import Task
from streams.config import ImageSettings, Settings
from training.dataset import InstructionExample
from training.metrics import TaskScore, score_task

if TYPE_CHECKING:
    from workers.backends.causal_lm import CausalLM, LlmOptionScorer
    from workers.backends.structured import LlmJsonExtractor


@dataclass(frozen=True)
class Answerers:
    """The model and its two answering paths, as the predictor serves them."""

    lm: CausalLM
    scorer: LlmOptionScorer
    extractor: LlmJsonExtractor

    def describe(self) -> dict[str, str | int]:
        """How answers are produced: what an evaluation's results must record."""
        return {
            "model": self.lm.name,
            "backend": "transformers",
            "decoding": self.scorer.decoding,
            "prompt_form": self.lm.prompt_form,
            "cutoff": self.lm.cutoff,
            "json_decoding": "constrained" if self.extractor.constrained else "free",
        }


def answerers(settings: Settings, decoding: str | None = None) -> Answerers:
    """A private copy of ``predictor.model`` (adapters go onto it) with the option scorer
    (``decoding``, default ``predictor.decoding``) and JSON extractor
    (``predictor.json_decoding``) the predictor stage would use; prompts in
    ``predictor.prompt_format``, cut to ``predictor.cutoff``.

    Always on transformers: where the predictor serves on vLLM (``predictor.backend =
    "vllm"``) its answers come from choice-constrained greedy decoding over the same prompt
    tokens, which picks the label whose first token is likeliest, as option scoring does, but
    not necessarily the same label where two labels share a first token or the likeliest
    continuation is not a label's; the results record ``backend`` so that is never hidden."""
    from workers.backends.causal_lm import CausalLM, LlmOptionScorer
    from workers.backends.structured import LlmJsonExtractor

    cfg = settings.predictor
    chosen = decoding or cfg.decoding
    if chosen not in ("score", "generate"):
        raise ValueError(f"decoding must be score or generate, not {chosen!r}")
    lm = CausalLM(
        cfg.model,
        settings.cache_dir,
        private=True,
        prompt_format=cfg.prompt_format,
        cutoff=cfg.cutoff,
    )
    return Answerers(
        lm,
        LlmOptionScorer(lm, chosen),
        LlmJsonExtractor(lm, constrained=cfg.json_decoding == "constrained"),
    )


def direct_inputs(examples: Sequence[InstructionExample], images: ImageSettings) -> list[Any]:
    """VIT-Pro's direct path: each example's images and its prompt without captions."""
    from workers.backends.vlm_answer import DirectInput
    from workers.images import ImageError, load_image

    inputs = []
    for example in examples:
        spec = get_task(example.task)
        sample = example.text_only()
        try:
            loaded = [load_image(ImageRef(url=url), images).image for url in example.images]
        except ImageError as exc:
            raise ValueError(f"{example.request_id}: {type(exc).__name__}: {exc}") from None
        inputs.append(DirectInput(loaded, sample.user_message(), spec.labels(example.options)))
    return inputs


def category_of(example: InstructionExample) -> str:
    """The ``category`` of the example's input JSON (a listing's); ``""`` where it has none."""
    value = orjson.loads(example.input)
    category = value.get("category") if isinstance(value, dict) else None
    return category if isinstance(category, str) else ""


def gold_answers(items: Sequence[InstructionExample]) -> list[str]:
    """The examples' gold labels; a JSON answer in its task's canonical text (its parse: LG's
    draft title first and aspects in schema order, AE's keys in order), as predictions are."""
    gold = []
    for example in items:
        spec, label = get_task(example.task), example.label()
        canonical = (
            spec.parse(label, spec.labels(example.options)) if spec.answer == "json" else None
        )
        gold.append(canonical or label)
    return gold


def _score(task: str, items: Sequence[InstructionExample], pred: Sequence[str | None]) -> TaskScore:
    gold = gold_answers(items)
    allowed = [e.options for e in items]
    return score_task(task, gold, pred, allowed, [category_of(e) for e in items])


def _answer_schemas(spec: Task, chunk: Sequence[InstructionExample]) -> list[dict[str, Any]]:
    """Each example's own answer schema (:meth:`~schemas.tasks.spec.Task.sample_schema`,
    LG's listing schema of its category), or ``[]`` for a task answered as a flat object of
    its keys (AE): how the predictor picks ``generate_json`` over ``extract``."""
    schemas = [spec.sample_schema(e.sample()) for e in chunk]
    return [s for s in schemas if s is not None] if all(schemas) else []


def evaluate(
    scorer: Any,
    examples: Sequence[InstructionExample],
    adapter: str | None = None,
    batch: int = 16,
    extractor: Any = None,
    direct: Any = None,
    images: ImageSettings | None = None,
) -> dict[str, TaskScore]:
    """Scores per task. ``scorer`` is an option scorer, ``extractor`` a JSON extractor (JSON
    tasks are skipped without one); with ``direct`` (a VLM answerer) the option tasks are
    answered from the examples' images instead (VIT-Pro's direct path; ``images`` says which
    image addresses may be read)."""
    by_task: dict[str, list[InstructionExample]] = defaultdict(list)
    for example in examples:
        by_task[example.task].append(example)
    results = {}
    for task, items in sorted(by_task.items()):
        spec = get_task(task)
        if spec.answer == "json" and (extractor is None or direct is not None):
            continue  # no extractor; the direct path scores options only
        pred: list[str | None] = []
        for start in range(0, len(items), batch):
            chunk = items[start : start + batch]
            labels = [spec.labels(e.options) for e in chunk]
            prompts = [e.sample().user_message() for e in chunk]
            if spec.answer == "json" and (schemas := _answer_schemas(spec, chunk)):
                texts = extractor.generate_json(prompts, schemas, adapter)
                pred += [spec.parse(t, e.options) for t, e in zip(texts, chunk, strict=True)]
                continue
            if spec.answer == "json":
                objects = extractor.extract(prompts, labels, adapter)
                pred += [
                    canonical_json(obj, keys) if set(obj) == set(keys) else None
                    for obj, keys in zip(objects, labels, strict=True)
                ]
                continue
            if direct is not None:
                choices = direct.choose(direct_inputs(chunk, images or ImageSettings()), adapter)
            else:
                choices = scorer.choose(prompts, labels, adapter)
            pred += [
                spec.parse(choice.text, legal) if choice.text is not None else choice.label
                for choice, legal in zip(choices, labels, strict=True)
            ]
        results[task] = _score(task, items, pred)
    return results


def category_majority(items: Sequence[InstructionExample], gold: Sequence[str]) -> list[str | None]:
    """A listing task's majority answers: for each example, the most frequent gold draft of
    the *other* examples of its category (the first of them on a tie), else of the other
    examples of any category, else none (a failure: a single example). Drafts are nearly all
    distinct (every listing has its own title), so a category's most frequent draft counted
    with the example itself would be its own gold wherever the category has one example:
    leaving it out keeps the baseline from reading its answer."""
    categories = [category_of(e) for e in items]
    answers: list[str | None] = []
    for i, category in enumerate(categories):
        others = [(c, g) for j, (c, g) in enumerate(zip(categories, gold, strict=True)) if j != i]
        pool = [g for c, g in others if c == category] or [g for _, g in others]
        answers.append(Counter(pool).most_common(1)[0][0] if pool else None)
    return answers


def majority_baseline(examples: Sequence[InstructionExample]) -> dict[str, TaskScore]:
    """Scores of always answering each task's most frequent gold answer (of these examples;
    for JSON tasks, each key's most frequent value; for a listing task, metric ``rouge_l``,
    :func:`category_majority`)."""
    by_task: dict[str, list[InstructionExample]] = defaultdict(list)
    for example in examples:
        by_task[example.task].append(example)
    results = {}
    for task, items in sorted(by_task.items()):
        gold = gold_answers(items)
        if get_task(task).metric == "rouge_l":
            results[task] = _score(task, items, category_majority(items, gold))
            continue
        if get_task(task).answer == "json":
            keys = items[0].options
            values = [
                Counter(str(e.sample_answer().get(k)) for e in items).most_common(1)[0][0]
                for k in keys
            ]
            most = canonical_json(dict(zip(keys, values, strict=True)), keys)
        else:
            most = Counter(gold).most_common(1)[0][0]
        results[task] = _score(task, items, [most] * len(gold))
    return results

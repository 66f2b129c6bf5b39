"""The predictor's direct path (VIT-Pro's): a VLM answers a request from its images, OCR
tokens and instruction, with no caption in the prompt; selected per task
(``predictor.direct_tasks``), beside CASLIE's caption -> CQE -> LLM path.

Contract: :meth:`DirectPath.choose` returns one answer per record: a :class:`Choice` (always a
legal label), or the reason no image of the request could be loaded (the predictor fails that
record with it). The prompt is the task's own (:meth:`~schemas.tasks.spec.Task.assemble`
without kept captions, with the captioner's OCR tokens); images are the request's slots in
order (claim photos, then the reference image).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from schemas.records import EnrichedRecord
from schemas.tasks.registry import get_task
from schemas.tasks.sample import ocr_tokens
from streams.config import ImageSettings
from streams.redact import redact_text
from workers.backends.base import Choice
from workers.backends.vlm_answer import DirectAnswerer, DirectInput
from workers.images import ImageError, load_image


def check_direct_tasks(codes: Iterable[str]) -> frozenset[str]:
    """The task codes, refused unless each is a registered yes/no or option task."""
    for code in codes:
        if get_task(code).answer == "json":
            raise ValueError(
                f"{code} answers with a JSON object: the direct path scores options only; "
                "leave it out of predictor.direct_tasks"
            )
    return frozenset(codes)


class DirectPath:
    """``adapter``: the VLM's own adapter ref, loaded on it (the text LLM's adapters are
    another model's and never reach the VLM)."""

    def __init__(
        self,
        answerer: DirectAnswerer,
        tasks: Iterable[str],
        images: ImageSettings,
        adapter: str | None = None,
    ) -> None:
        self.answerer = answerer
        self.tasks = check_direct_tasks(tasks)
        self.images = images
        self.adapter = adapter

    def wants(self, record: EnrichedRecord) -> bool:
        return record.task in self.tasks

    def _input(self, record: EnrichedRecord) -> DirectInput | str:
        task = get_task(record.task)
        loaded, errors = [], []
        for slot in record.slots:
            if slot.image is None:
                continue
            try:
                loaded.append(load_image(slot.image, self.images).image)
            except ImageError as exc:
                errors.append(f"{slot.slot}: {redact_text(f'{type(exc).__name__}: {exc}')}")
        if errors or not loaded:  # a missing image would shift the prompt's [1], [2] ...
            return "an image of the request could not be loaded: " + ("; ".join(errors) or "none")
        prompt = task.assemble(record, {}, ocr_tokens(record)).user_message()
        return DirectInput(loaded, prompt, task.labels(record.options))

    def choose(self, records: Sequence[EnrichedRecord]) -> list[Choice | str]:
        inputs = [self._input(r) for r in records]
        ready = [i for i in inputs if isinstance(i, DirectInput)]
        answers = iter(self.answerer.choose(ready, self.adapter) if ready else [])
        return [next(answers) if isinstance(i, DirectInput) else i for i in inputs]

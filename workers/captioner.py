"""EC3: caption every image slot of a request with its task-conditioned prompt, and read
the OCR tokens of its image beside the caption.

Prompt ``"task"`` (the method): the task's captioning prompt from the slot's values, which
also go to the captioner as its context (the OCR captioner ranks its lines by them).
``"generic"`` (the ablation of context-free captions, the paper's task-unaware BLIP-2 baseline):
:data:`~schemas.tasks.prompts.GENERIC_CAPTION_PROMPT` for every image and no context, whatever
the backend; the trace's detail says ``generic prompt``.

Images of a batch are fetched in parallel; captions are cached by (model, prompt, image
sha256); all uncached slots of the batch go to the captioning model together. A slot whose
image cannot be fetched or decoded gets no caption and the reason is recorded, with URL
credentials redacted (:mod:`streams.redact`).

With an OCR reader, every slot whose image loaded, of a request that ``ocr_wanted``, gets
``Caption.ocr_tokens``, cached by (reader, image sha256) apart from the captions (so a
caption cache hit still has its tokens); the batch's uncached images are read after the
captions, each distinct image once. An image the reader fails on gets ``Caption.ocr_error``;
its caption and the record go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from schemas.base import now
from schemas.records import Caption, CaptionedRecord, ImageSlot, TaskRequest, TraceEntry
from schemas.tasks.prompts import GENERIC_CAPTION_PROMPT
from schemas.tasks.registry import get_task
from schemas.tasks.spec import Task
from streams import metrics
from streams.config import ImageSettings
from streams.redact import redact_text
from streams.stage import Emit, Inbound, Result
from streams.topics import STAGE_LAYOUT
from workers.backends.base import Captioner, CaptionInput, OcrReader
from workers.engine import engine_failed
from workers.images import ImageError, LoadedImage, load_image
from workers.lru import LruCache

LAYOUT = STAGE_LAYOUT["captioner"]
STAGE = LAYOUT.name

#: Which captioning prompt the stage gives (``captioner.prompt``).
PromptMode = Literal["task", "generic"]
#: Captions keyed by (model, prompt, image sha256).
CaptionCache = LruCache[tuple[str, str, str], str]
#: OCR tokens keyed by (reader, image sha256).
OcrCache = LruCache[tuple[str, str], str]


def _always(_request: TaskRequest) -> bool:
    return True


class CaptionerStage:
    name = STAGE
    input_topics = LAYOUT.inputs
    #: A dead model engine stops the worker; anything else fails one record.
    is_fatal = staticmethod(engine_failed)

    def __init__(
        self,
        captioner: Captioner,
        images: ImageSettings,
        cache_size: int = 10_000,
        ocr: OcrReader | None = None,
        ocr_wanted: Callable[[TaskRequest], bool] = _always,
        prompt: PromptMode = "task",
    ) -> None:
        self.captioner = captioner
        self.prompt = prompt
        self.images = images
        self.cache = CaptionCache(cache_size)
        self.ocr = ocr
        self.ocr_wanted = ocr_wanted
        self.ocr_cache = OcrCache(cache_size)
        self._pool = ThreadPoolExecutor(
            max_workers=images.fetch_threads, thread_name_prefix="image-fetch"
        )

    def forget(self) -> None:
        """Empty every cache, the backends' own included (a timed run starts cold)."""
        self.cache.clear()
        self.ocr_cache.clear()
        for backend in (self.captioner, self.ocr):
            forget = getattr(backend, "forget", None)
            if callable(forget):
                forget()

    def _load(self, request: TaskRequest) -> list[LoadedImage | ImageError | None]:
        return [None if s.image is None else _try_load(s.image, self.images) for s in request.slots]

    def process(self, batch: Sequence[Inbound]) -> Sequence[Result]:
        started = time.monotonic()
        requests: list[TaskRequest] = []
        for item in batch:
            assert isinstance(item.value, TaskRequest)
            requests.append(item.value)
        loaded = list(self._pool.map(self._load, requests))

        captions: list[list[Caption | None]] = []
        todo: list[tuple[int, int, CaptionInput, tuple[str, str, str]]] = []
        for i, (request, images) in enumerate(zip(requests, loaded, strict=True)):
            assert isinstance(request, TaskRequest)
            spec = get_task(request.task)
            row: list[Caption | None] = []
            for j, (slot, image) in enumerate(zip(request.slots, images, strict=True)):
                if image is None:
                    row.append(Caption(slot=slot.slot, error="no image"))
                    continue
                if isinstance(image, ImageError):
                    row.append(Caption(slot=slot.slot, error=_reason(image)))
                    continue
                prompt, context = self._prompt(spec, slot)
                key = (self.captioner.name, prompt, image.sha256)
                cached = self.cache.get(key)
                if cached is not None:
                    row.append(
                        Caption(
                            slot=slot.slot,
                            text=cached,
                            model=self.captioner.name,
                            image_sha256=image.sha256,
                            cached=True,
                        )
                    )
                    continue
                row.append(None)
                todo.append((i, j, CaptionInput(image.image, prompt, context), key))
            captions.append(row)

        if todo:
            with metrics.MODEL_SECONDS.labels(STAGE, self.captioner.name).time():
                texts = self.captioner.caption([item for _, _, item, _ in todo])
            for (i, j, _, key), text in zip(todo, texts, strict=True):
                self.cache.put(key, text)
                captions[i][j] = Caption(
                    slot=requests[i].slots[j].slot,
                    text=text,
                    model=self.captioner.name,
                    image_sha256=key[2],
                )

        for (i, j), (tokens, error) in self._read_ocr(requests, loaded).items():
            caption = captions[i][j]
            assert caption is not None
            captions[i][j] = caption.model_copy(update={"ocr_tokens": tokens, "ocr_error": error})

        stamp = now()
        elapsed = time.monotonic() - started
        detail = f"batch {len(batch)} in {elapsed:.2f}s"
        if self.prompt == "generic":
            detail += ", generic prompt"
        if self.ocr is not None:
            detail += f", ocr {self.ocr.name}"
        results: list[Result] = []
        for request, row in zip(requests, captions, strict=True):
            assert isinstance(request, TaskRequest)
            record = CaptionedRecord.model_validate(
                {
                    **request.model_dump(),
                    "captions": [c.model_dump() for c in row if c is not None],
                    "timestamps": {**request.timestamps, STAGE: stamp},
                    "trace": [
                        *request.trace,
                        TraceEntry(
                            stage=STAGE,
                            at=stamp,
                            model=self.captioner.name,
                            detail=detail,
                        ),
                    ],
                }
            )
            results.append(Emit([LAYOUT.output(record.request_id, record)]))
        return results

    def _prompt(self, spec: Task, slot: ImageSlot) -> tuple[str, Mapping[str, str]]:
        """The captioning prompt of a slot and the context the captioner gets with it."""
        if self.prompt == "generic":
            return GENERIC_CAPTION_PROMPT, {}
        return spec.caption_prompt(slot.caption_vars), slot.caption_vars

    def _read_ocr(
        self, requests: Sequence[TaskRequest], loaded: Sequence[Sequence[object]]
    ) -> dict[tuple[int, int], tuple[str | None, str | None]]:
        """(request, slot) -> (OCR tokens, error) for each slot that wants them."""
        if self.ocr is None:
            return {}
        reader = self.ocr
        wanted: dict[tuple[int, int], str] = {}
        found: dict[str, tuple[str | None, str | None]] = {}
        todo: dict[str, LoadedImage] = {}
        for i, (request, images) in enumerate(zip(requests, loaded, strict=True)):
            if not self.ocr_wanted(request):
                continue
            for j, image in enumerate(images):
                if not isinstance(image, LoadedImage):
                    continue
                wanted[(i, j)] = image.sha256
                cached = self.ocr_cache.get((reader.name, image.sha256))
                if cached is not None:
                    found[image.sha256] = (cached, None)
                elif image.sha256 not in found:
                    todo[image.sha256] = image
        if todo:
            with metrics.MODEL_SECONDS.labels(STAGE, reader.name).time():
                fresh = _read_each(reader, list(todo.values()))
            for sha256, (tokens, _) in fresh.items():
                if tokens is not None:
                    self.ocr_cache.put((reader.name, sha256), tokens)
            found.update(fresh)
        return {slot: found[sha256] for slot, sha256 in wanted.items()}


def _read_each(
    reader: OcrReader, images: Sequence[LoadedImage]
) -> dict[str, tuple[str | None, str | None]]:
    """Read all images in one call; if that fails, each alone, so a failure is its image's.
    A failed model engine (:func:`engine_failed`) is raised: it stops the worker."""
    try:
        texts = reader.read([image.image for image in images])
        return {image.sha256: (text, None) for image, text in zip(images, texts, strict=True)}
    except Exception as exc:
        if engine_failed(exc):
            raise
        if len(images) == 1:
            return {images[0].sha256: (None, _reason(exc))}
    found: dict[str, tuple[str | None, str | None]] = {}
    for image in images:
        try:
            [text] = reader.read([image.image])
            found[image.sha256] = (text, None)
        except Exception as exc:
            if engine_failed(exc):
                raise
            found[image.sha256] = (None, _reason(exc))
    return found


def _reason(exc: BaseException) -> str:
    return redact_text(f"{type(exc).__name__}: {exc}")


def _try_load(ref: object, settings: ImageSettings) -> LoadedImage | ImageError:
    try:
        return load_image(ref, settings)  # type: ignore[arg-type]
    except ImageError as exc:
        return exc

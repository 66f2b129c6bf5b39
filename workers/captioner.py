"""EC3: caption every image slot of a request with its task-conditioned prompt.

Images of a batch are fetched in parallel; captions are cached by (model, prompt, image
sha256); all uncached slots of the batch go to the captioning model together. A slot whose
image cannot be fetched or decoded gets no caption and the reason is recorded, with URL
credentials redacted (:mod:`streams.redact`).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from schemas.base import now
from schemas.records import Caption, CaptionedRecord, TaskRequest, TraceEntry
from schemas.tasks.registry import get_task
from streams import metrics
from streams.config import ImageSettings
from streams.redact import redact_text
from streams.stage import Emit, Inbound, Result
from streams.topics import STAGE_LAYOUT
from workers.backends.base import Captioner, CaptionInput
from workers.engine import engine_failed
from workers.images import ImageError, LoadedImage, load_image

LAYOUT = STAGE_LAYOUT["captioner"]
STAGE = LAYOUT.name


class CaptionCache:
    """A bounded LRU of captions keyed by (model, prompt, image sha256)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: collections.OrderedDict[tuple[str, str, str], str] = collections.OrderedDict()

    def get(self, key: tuple[str, str, str]) -> str | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: tuple[str, str, str], value: str) -> None:
        if self.size == 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)


class CaptionerStage:
    name = STAGE
    input_topics = LAYOUT.inputs
    #: A dead model engine stops the worker; anything else fails one record.
    is_fatal = staticmethod(engine_failed)

    def __init__(
        self, captioner: Captioner, images: ImageSettings, cache_size: int = 10_000
    ) -> None:
        self.captioner = captioner
        self.images = images
        self.cache = CaptionCache(cache_size)
        self._pool = ThreadPoolExecutor(
            max_workers=images.fetch_threads, thread_name_prefix="image-fetch"
        )

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
                    reason = redact_text(f"{type(image).__name__}: {image}")
                    row.append(Caption(slot=slot.slot, error=reason))
                    continue
                prompt = spec.caption_prompt(slot.caption_vars)
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
                todo.append((i, j, CaptionInput(image.image, prompt, slot.caption_vars), key))
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

        stamp = now()
        elapsed = time.monotonic() - started
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
                            detail=f"batch {len(batch)} in {elapsed:.2f}s",
                        ),
                    ],
                }
            )
            results.append(Emit([LAYOUT.output(record.request_id, record)]))
        return results


def _try_load(ref: object, settings: ImageSettings) -> LoadedImage | ImageError:
    try:
        return load_image(ref, settings)  # type: ignore[arg-type]
    except ImageError as exc:
        return exc

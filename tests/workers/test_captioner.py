"""The captioner stage on real image files: a slot whose image cannot be used gets the reason,
credentials redacted, and never fails the batch; OCR tokens come beside the captions."""

from __future__ import annotations

import io
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

from caslie.demo_data import draw_product
from schemas.records import Caption, CaptionedRecord, TaskRequest
from schemas.tasks.prompts import GENERIC_CAPTION_PROMPT
from schemas.tasks.registry import get_task
from schemas.tasks.sa import SA_OPTIONS
from streams.config import ImageSettings
from streams.stage import Emit, Inbound
from workers.backends.base import CaptionInput
from workers.backends.ocr import OcrCaptioner, Tesseract, TesseractReader
from workers.captioner import CaptionerStage


class _Echo:
    """A captioning model stand-in: the caption is the image's size."""

    name = "echo"

    def caption(self, items: Sequence[CaptionInput]) -> list[str]:
        return [f"{item.image.width}x{item.image.height}" for item in items]


def _request(request_id: str, url: str, context: str = "a mug") -> Inbound:
    spec = get_task("SA")
    slot = {
        "slot": "review",
        "image": {"url": url},
        "caption_vars": dict.fromkeys(spec.caption_vars, context),
        "judge_vars": dict.fromkeys(spec.judge_vars, "a mug"),
    }
    request = TaskRequest.model_validate(
        {
            "request_id": request_id,
            "task": "SA",
            "inputs": {"review": "love it"},
            "options": list(SA_OPTIONS),
            "slots": [slot],
        }
    )
    return Inbound("caslie.requests", 0, 0, None, request, b"")


def test_bad_image_urls_fail_their_slot_only_with_credentials_redacted(tmp_path: Path) -> None:
    image = tmp_path / "mug.png"
    buf = io.BytesIO()
    Image.new("RGB", (64, 32), (200, 20, 20)).save(buf, format="PNG")
    image.write_bytes(buf.getvalue())
    stage = CaptionerStage(_Echo(), ImageSettings(file_roots=[str(tmp_path)]))
    batch = [
        _request("good", image.as_uri()),
        _request(
            "bad-port", "https://bob:hunter2@cdn.example.com:99999/a.png?X-Amz-Signature=s3kr1t"
        ),
        _request("long-label", f"http://{'a' * 64}.example.com/a.png?token=s3kr1t"),
        _request("nat64", "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/"),
    ]
    results = stage.process(batch)
    captions = {}
    for result in results:
        assert isinstance(result, Emit)
        record = result.outputs[0].value
        assert isinstance(record, CaptionedRecord)
        captions[record.request_id] = record.captions[0]
    assert captions["good"].text == "64x32"
    assert captions["bad-port"].error is not None
    assert captions["bad-port"].error.startswith("ImageRefused: malformed port")
    assert "not valid" in (captions["long-label"].error or "")
    assert "169.254.169.254" in (captions["nat64"].error or "")
    for caption in captions.values():
        assert "hunter2" not in (caption.error or "") and "s3kr1t" not in (caption.error or "")


needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr not installed"
)


class _Flaky:
    """An OCR reader stand-in that cannot read 64-pixel-wide images."""

    name = "flaky"

    def read(self, images: Sequence[Image.Image]) -> list[str]:
        if any(image.width == 64 for image in images):
            raise RuntimeError("tesseract failed: cannot read")
        return [f"w{image.width}" for image in images]


def _png(path: Path, width: int) -> str:
    Image.new("RGB", (width, 32), (200, 20, 20)).save(path, format="PNG")
    return path.as_uri()


def _captions(stage: CaptionerStage, batch: list[Inbound]) -> dict[str, Caption]:
    out = {}
    for result in stage.process(batch):
        assert isinstance(result, Emit)
        record = result.outputs[0].value
        assert isinstance(record, CaptionedRecord)
        out[record.request_id] = record.captions[0]
    return out


@needs_tesseract
def test_ocr_tokens_come_from_the_captioners_tesseract_run_and_stay_on_cache_hits(
    tmp_path: Path, tesseract_runs: list[list[str]]
) -> None:
    path = tmp_path / "bottle.png"
    draw_product(path, "ACME", "500 ml", (250, 250, 250), (10, 10, 10))
    tesseract = Tesseract()
    stage = CaptionerStage(
        OcrCaptioner(tesseract=tesseract),
        ImageSettings(file_roots=[str(tmp_path)]),
        ocr=TesseractReader(tesseract=tesseract),
    )
    first = _captions(stage, [_request("first", path.as_uri())])["first"]
    assert "ACME" in (first.text or "")
    assert first.ocr_tokens == "ACME 500 ml" and first.ocr_error is None
    assert len(tesseract_runs) == 2  # one reading (dark-on-light, inverted) for both
    again = _captions(stage, [_request("again", path.as_uri())])["again"]
    assert again.cached and again.text == first.text and again.ocr_tokens == "ACME 500 ml"
    assert len(tesseract_runs) == 2


@needs_tesseract
def test_no_reader_or_unwanted_ocr_reads_nothing_and_a_broken_image_has_no_tokens(
    tmp_path: Path, tesseract_runs: list[list[str]]
) -> None:
    good = _png(tmp_path / "good.png", 64)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    images = ImageSettings(file_roots=[str(tmp_path)])
    batch = [_request("good", good), _request("broken", broken.as_uri())]
    for stage in (
        CaptionerStage(_Echo(), images),
        CaptionerStage(_Echo(), images, ocr=TesseractReader(), ocr_wanted=lambda _r: False),
    ):
        captions = _captions(stage, batch)
        assert captions["good"].text == "64x32" and captions["good"].ocr_tokens is None
    assert tesseract_runs == []
    stage = CaptionerStage(_Echo(), images, ocr=TesseractReader())
    captions = _captions(stage, batch)
    assert captions["good"].ocr_tokens == ""  # a plain red image: read, no text
    assert captions["broken"].error is not None and captions["broken"].text is None
    assert captions["broken"].ocr_tokens is None and captions["broken"].ocr_error is None
    assert len(tesseract_runs) == 2


@needs_tesseract
def test_generic_prompt_captions_an_image_alike_whatever_the_context(tmp_path: Path) -> None:
    path = tmp_path / "bottle.png"
    draw_product(path, "ACME", "500 ml", (250, 250, 250), (10, 10, 10))
    images = ImageSettings(file_roots=[str(tmp_path)])

    def two_contexts(stage: CaptionerStage) -> list[Caption]:
        # one batch each, so the second can only be a cache hit of the first
        return [
            _captions(stage, [_request(name, path.as_uri(), context)])[name]
            for name, context in (("volume", "500 ml bottle"), ("brand", "ACME bottle"))
        ]

    task = CaptionerStage(OcrCaptioner(max_lines=1), images)
    by_volume, by_brand = two_contexts(task)
    assert '"500 ml"' in (by_volume.text or "") and '"ACME"' in (by_brand.text or "")
    assert not by_brand.cached

    generic = CaptionerStage(OcrCaptioner(max_lines=1), images, prompt="generic")
    first, second = two_contexts(generic)
    assert second.cached and second.text == first.text
    # a fresh stage, no cache: the context does not reach the captioner either
    fresh = CaptionerStage(OcrCaptioner(max_lines=1), images, prompt="generic")
    alone = _captions(fresh, [_request("brand", path.as_uri(), "ACME bottle")])["brand"]
    assert not alone.cached and alone.text == first.text
    assert len(generic.cache) == 1 and first.image_sha256 is not None
    key = (generic.captioner.name, GENERIC_CAPTION_PROMPT, first.image_sha256)
    assert generic.cache.get(key) == first.text
    [result] = generic.process([_request("traced", path.as_uri())])
    assert isinstance(result, Emit)
    record = result.outputs[0].value
    assert isinstance(record, CaptionedRecord)
    assert "generic prompt" in (record.trace[-1].detail or "")


def test_an_image_the_reader_fails_on_records_why_and_keeps_its_caption(tmp_path: Path) -> None:
    stage = CaptionerStage(
        _Echo(),
        ImageSettings(file_roots=[str(tmp_path)]),
        ocr=_Flaky(),
    )
    captions = _captions(
        stage,
        [
            _request("unreadable", _png(tmp_path / "a.png", 64)),
            _request("readable", _png(tmp_path / "b.png", 80)),
            _request("same-image", _png(tmp_path / "c.png", 80)),
        ],
    )
    assert captions["unreadable"].text == "64x32" and captions["unreadable"].ocr_tokens is None
    assert captions["unreadable"].ocr_error == "RuntimeError: tesseract failed: cannot read"
    assert captions["readable"].ocr_tokens == "w80" and captions["readable"].ocr_error is None
    assert captions["same-image"].ocr_tokens == "w80"
    assert len(stage.ocr_cache) == 1  # the failure is not cached; one image read once
